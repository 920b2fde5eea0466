"""Scoring with a trained reward model: the one function behind every use of an ORM / BT RM /
PRM (a GRPO reward, the scorer of best-of-N, the scorer of step beam search).

`RewardModelScorer(directory)` loads the export of the `reward_model` trainer (backbone +
scalar head, tokenizer, `reward_model.json`) and `solution_scores(prompts, texts)` returns
one number in [0, 1] per solution:

1. the text is cut into steps at the delimiter (`reward_model.delimiter`; ORM and BT models
   score the whole text as one step), keeping each delimiter with its step;
2. prompt + steps are tokenized exactly as in training (`data.reward_data.scored_tokens`) and
   the head's value at each step's last token is read in batched forward passes
   (`rows.score_rows` rows, sharded over the mesh like a training batch);
3. the step probabilities sigmoid(score) are aggregated: `last` (the last step's; Snell et al.
   found it best), `min`, or `product`. A text with no step (empty) scores 0.

Adapters for the three uses: `best_of_n_scorer()` (a `test_time.Scorer` over `Generations`),
`beam_scorer(prompts)` (the batched scorer of `step_search.step_beam_search`) and
`reward_fn(task)` (GRPO's `reward_fn(records, texts)`).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Callable, Sequence

import jax
import numpy as np

from jaxreason.data.reward_data import scored_example

AGGREGATIONS = ("last", "min", "product")
INFO_FILE = "reward_model.json"


def split_steps(text: str, delimiters: Sequence[str]) -> list[str]:
    """`text` cut after every occurrence of a delimiter (the earliest match first); the rest
    after the last delimiter is the last step. No delimiters: the whole text."""
    if not delimiters:
        return [text] if text else []
    steps, start = [], 0
    while start < len(text):
        found = [(text.find(d, start), d) for d in delimiters]
        found = [(i, d) for i, d in found if i >= 0]
        if not found:
            steps.append(text[start:])
            break
        i, d = min(found, key=lambda x: (x[0], -len(x[1])))
        steps.append(text[start:i + len(d)])
        start = i + len(d)
    return steps


def aggregate(probabilities: Sequence[float], how: str) -> float:
    """One solution score from its step probabilities (0 when there are none)."""
    if how not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {how!r}")
    if len(probabilities) == 0:
        return 0.0
    if how == "last":
        return float(probabilities[-1])
    if how == "min":
        return float(np.min(probabilities))
    return float(np.prod(probabilities))


class RewardModelScorer:
    """A trained reward model on a mesh (default: all local devices), with its tokenizer."""

    def __init__(self, directory: str, *, mesh: Any = None, batch_rows: int = 64,
                 aggregation: str | None = None, dtype: str = "float32") -> None:
        from jaxreason import parallel
        from jaxreason.model import value_head
        from jaxreason.model.config import load_config
        from jaxreason.prompting import PromptFormat
        from jaxreason.tokenizer import load_tokenizer
        from jaxreason.train.step import batch_sharding

        info_path = os.path.join(directory, INFO_FILE)
        if not os.path.exists(info_path):
            raise FileNotFoundError(f"{directory} has no {INFO_FILE}: not an export of the "
                                    f"reward_model trainer")
        with open(info_path) as f:
            self.info = json.load(f)
        self.kind = self.info["kind"]
        self.aggregation = aggregation or self.info.get("aggregation", "last")
        aggregate([], self.aggregation)  # checks the name
        self.delimiters = tuple(self.info.get("delimiters") or ()) if self.kind == "prm" else ()
        self.max_length = int(self.info.get("max_length", 1024))
        self.prompt_format = PromptFormat(chat=bool(self.info.get("chat", False)),
                                          add_bos=bool(self.info.get("add_bos", True)))
        self.mesh = mesh if mesh is not None else parallel.make_mesh(devices=jax.local_devices())
        self.config = load_config(directory, dtype=dtype, param_dtype="float32")
        self.params = value_head.load_pretrained(directory, self.config, mesh=self.mesh)
        self.tokenizer = load_tokenizer(directory)
        shards = self.mesh.shape["data"] * self.mesh.shape["fsdp"]
        self.rows = max(1, math.ceil(batch_rows / shards)) * shards
        config = self.config
        self._values = jax.jit(lambda p, b: value_head.batch_values(p, config, b),
                               in_shardings=(None, batch_sharding(self.mesh)))
        self.forward_calls = 0

    # ------------------------------------------------------------------------- scoring

    def prompt_ids(self, prompt: Any) -> list[int]:
        """A prompt (string or chat messages) rendered as the reward model was trained."""
        from jaxreason.prompting import prompt_token_ids

        return prompt_token_ids(prompt, self.tokenizer, self.prompt_format)

    def step_scores(self, prompts: Sequence[Sequence[int]], solutions: Sequence[Sequence[str]]
                    ) -> list[np.ndarray]:
        """Per solution, the probability sigmoid(score) of each step that fits the model's
        row length (prompts: token ids; solutions: step texts)."""
        from jaxreason import parallel
        from jaxreason.data.rows import length_bucket, score_rows

        examples = [scored_example(p, s, [0.0] * len(s), self.tokenizer, self.max_length)
                    if s else None for p, s in zip(prompts, solutions)]
        out: list[np.ndarray] = [np.zeros(0, np.float32) for _ in examples]
        todo = sorted((i for i, e in enumerate(examples) if e is not None),
                      key=lambda i: len(examples[i]["tokens"]))
        with jax.set_mesh(self.mesh), parallel.logical_rules(parallel.DEFAULT_RULES):
            for start in range(0, len(todo), self.rows):
                chunk = todo[start:start + self.rows]
                length = length_bucket(max(len(examples[i]["tokens"]) - 1 for i in chunk),
                                       self.max_length)
                batch = score_rows([examples[i] for i in chunk], self.rows, length)
                fields = {k: batch[k] for k in ("input_ids", "positions", "segment_ids")}
                values = np.asarray(parallel.to_host(self._values(
                    self.params, parallel.host_local_to_global(fields, self.mesh))))
                self.forward_calls += 1
                for row, i in enumerate(chunk):
                    scored = batch["loss_mask"][row] > 0
                    out[i] = 1.0 / (1.0 + np.exp(-values[row][scored].astype(np.float64)))
        return out

    def solution_scores(self, prompts: Sequence[Sequence[int]], texts: Sequence[str],
                        aggregation: str | None = None) -> np.ndarray:
        """`[solutions]` aggregated scores in [0, 1] (see the module docstring)."""
        how = aggregation or self.aggregation
        steps = [split_steps(t, self.delimiters) for t in texts]
        return np.asarray([aggregate(p, how) for p in self.step_scores(prompts, steps)],
                          np.float64)

    # ------------------------------------------------------------------------- adapters

    def best_of_n_scorer(self, prompts: Sequence[Sequence[int]] | None = None,
                         aggregation: str | None = None) -> Callable[[Any], np.ndarray]:
        """A `test_time.Scorer`: `[rows]` scores of a `Generations`' texts. prompts: the
        reward model's token ids of each prompt (`prompt_ids`); None: the generations' own
        (when the reward model shares the policy's tokenizer and prompt format)."""
        def scorer(generations: Any) -> np.ndarray:
            own = generations.prompt_token_ids if prompts is None else prompts
            rows = [own[int(p)] for p in generations.prompt_index]
            return self.solution_scores(rows, generations.texts, aggregation)
        return scorer

    def beam_scorer(self, prompts: Sequence[Sequence[int]], aggregation: str | None = None
                    ) -> Callable[[Sequence[tuple[int, str]]], list[float]]:
        """The batched scorer of `step_beam_search`: (problem index, partial solution text)
        pairs -> scores, all in one call per search round."""
        def scorer(items: Sequence[tuple[int, str]]) -> list[float]:
            return list(self.solution_scores([prompts[p] for p, _ in items],
                                             [text for _, text in items], aggregation))
        return scorer

    def reward_fn(self, task: Any, aggregation: str | None = None
                  ) -> Callable[[Sequence[Any], Sequence[str]], list[float]]:
        """A GRPO / PPO `reward_fn(records, completions)`: the model's score of each
        completion under the task's prompt of its record."""
        from jaxreason.prompting import record_prompt

        def reward(records: Sequence[Any], completions: Sequence[str]) -> list[float]:
            prompts = [self.prompt_ids(record_prompt(r, task, self.prompt_format))
                       for r in records]
            return list(self.solution_scores(prompts, completions, aggregation))
        return reward
