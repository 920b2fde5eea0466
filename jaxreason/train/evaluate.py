"""Held-out task accuracy of the model being trained: the evaluation harness of
`launch/eval.py` (`jaxreason.evaluation.harness`), run inside training.

Prompts are rendered exactly as in training (`jaxreason.prompting.prompt_token_ids`), so the
model continues from the context it learned on; sampling and grading go through
`jaxreason.generation.sample_and_grade` (greedy, cut at the same stop strings as training's
samples), the road GRPO's rollouts take too. Each evaluation writes the same files as the
suite does: `<report_dir>/step_<k>/items.jsonl`, `report.json` and `report.md`, so an
in-training evaluation and `launch/eval.py` on the export can be compared item by item. One
`Sampler` lives for the whole run and only its parameters change: evaluation compiles once.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Sequence

from jax.sharding import Mesh

from jaxreason.evaluation.harness import EvalSettings, answer_rate, run_items
from jaxreason.evaluation.report import behavior_domain, figures, write_report
from jaxreason.model.config import ModelConfig
from jaxreason.model.model import Model
from jaxreason.prompting import PromptFormat, prompt_token_ids

log = logging.getLogger(__name__)


class TaskEvaluator:
    """`evaluator(params, step=None) -> metrics` on fixed held-out `records` of `task`.

    Metrics: accuracy (share graded correct, greedy), mean_reward, answer_rate (share with a
    well-formed answer) and num_examples; `last_samples` keeps a few (record, completion,
    correct) triples. stop: the stop strings training samples with. report_dir: where each
    evaluation's report goes (None: nowhere); process 0 writes."""

    def __init__(self, model_config: ModelConfig, mesh: Mesh, tokenizer: Any, task: Any,
                 records: Sequence[dict[str, Any]], fmt: PromptFormat, *, max_new_tokens: int,
                 batch_size: int, grading_workers: int | None = None,
                 stop: Sequence[str] = (), report_dir: str | None = None) -> None:
        self.model_config, self.mesh = model_config, mesh
        self.tokenizer, self.task, self.records = tokenizer, task, list(records)
        self.settings = EvalSettings(greedy=True, n=0, max_new_tokens=max_new_tokens,
                                     stop=tuple(stop), batch_size=batch_size,
                                     grading_workers=grading_workers)
        self.report_dir = report_dir
        self.prompts = [prompt_token_ids(task.prompt(r, chat=fmt.chat), tokenizer, fmt)
                        for r in self.records]
        self._sampler: Any = None
        self.last_samples: list[tuple[dict[str, Any], str, bool]] = []

    def __call__(self, params: Any, step: int | None = None) -> dict[str, float]:
        import jax

        from jaxreason.sampling import Sampler

        if self._sampler is None:
            self._sampler = Sampler(Model(self.model_config, params, self.mesh), self.tokenizer)
        else:
            self._sampler.update_params(params)
        directory = None
        if self.report_dir is not None and step is not None:
            directory = os.path.join(self.report_dir, f"step_{step}")
            items_file = os.path.join(directory, "items.jsonl")
            if os.path.exists(items_file):  # a fresh evaluation of these parameters
                os.remove(items_file)
        items = run_items(self._sampler, self.task, self.records, self.prompts, self.settings,
                          items_file=None)
        greedy = [it["greedy"] for it in items]
        self.last_samples = [(it["record"], g["completion"], g["correct"])
                             for it, g in zip(items[:8], greedy)]
        if directory is not None and jax.process_index() == 0:
            _write_items(os.path.join(directory, "items.jsonl"), items)
            write_report(directory, {"held_out": figures(
                items, domain=behavior_domain(getattr(self.task, "name", "")))}, {"step": step})
        n = max(len(greedy), 1)
        return {
            "accuracy": sum(g["correct"] for g in greedy) / n,
            "mean_reward": sum(g["reward"] for g in greedy) / n,
            "answer_rate": answer_rate(items),
            "num_examples": float(len(greedy)),
        }


def _write_items(path: str, items: Sequence[dict[str, Any]]) -> None:
    import json

    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        for item in items:
            f.write(json.dumps(item, default=str) + "\n")
    os.replace(path + ".tmp", path)
