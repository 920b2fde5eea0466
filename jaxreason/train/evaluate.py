"""Held-out task accuracy of the model being trained: greedy samples graded by the task.

Prompts are rendered exactly as in training (`jaxreason.prompting.prompt_token_ids`), so the
model continues from the context it learned on; sampling and grading go through
`jaxreason.generation.sample_and_grade`, the road GRPO's rollouts take too, so a completion is
cut at the same stop strings and graded the same way in training and in evaluation. One
`Sampler` lives for the whole run and only its parameters change, so evaluation compiles once.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from jax.sharding import Mesh

from jaxreason.model.config import ModelConfig
from jaxreason.model.model import Model
from jaxreason.prompting import PromptFormat, prompt_token_ids

log = logging.getLogger(__name__)


class TaskEvaluator:
    """`evaluator(params) -> metrics` on fixed held-out `records` of `task`.

    Metrics: accuracy (share graded correct), mean_reward, answer_rate (share with a
    well-formed answer) and num_examples; `last_samples` keeps a few (prompt record,
    completion, grade) triples for inspection. `stop`: stop strings (those training samples
    with, so both grade the same text).
    """

    def __init__(self, model_config: ModelConfig, mesh: Mesh, tokenizer: Any, task: Any,
                 records: Sequence[dict[str, Any]], fmt: PromptFormat, *, max_new_tokens: int,
                 batch_size: int, grading_workers: int | None = None,
                 stop: Sequence[str] = ()) -> None:
        self.model_config, self.mesh = model_config, mesh
        self.tokenizer, self.task, self.records = tokenizer, task, list(records)
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.grading_workers, self.stop = grading_workers, tuple(stop)
        self.prompts = [prompt_token_ids(task.prompt(r, chat=fmt.chat), tokenizer, fmt)
                        for r in self.records]
        self._sampler: Any = None
        self.last_samples: list[tuple[dict[str, Any], str, Any]] = []

    def __call__(self, params: Any) -> dict[str, float]:
        from jaxreason.generation import sample_and_grade
        from jaxreason.sampling import Sampler, SamplingParams

        if self._sampler is None:
            self._sampler = Sampler(Model(self.model_config, params, self.mesh), self.tokenizer)
        else:
            self._sampler.update_params(params)
        sampling = SamplingParams(temperature=0.0, max_new_tokens=self.max_new_tokens,
                                  stop=self.stop)
        texts: list[str] = []
        grades: list[Any] = []
        for start in range(0, len(self.prompts), self.batch_size):
            out = sample_and_grade(self._sampler, self.prompts[start:start + self.batch_size],
                                   self.records[start:start + self.batch_size], sampling,
                                   task=self.task, num_workers=self.grading_workers)
            texts.extend(out.texts)
            grades.extend(out.grades)
        self.last_samples = list(zip(self.records, texts, grades))[:8]
        n = max(len(grades), 1)
        return {
            "accuracy": sum(g.correct for g in grades) / n,
            "mean_reward": sum(g.reward for g in grades) / n,
            "answer_rate": sum(g.extracted is not None for g in grades) / n,
            "num_examples": float(len(grades)),
        }
