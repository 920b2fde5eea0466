"""Held-out task accuracy of the model being trained: greedy samples graded by the task.

Prompts are tokenized exactly as in training (`batching.prompt_token_ids`), so the model
continues from the context it learned on. One `Sampler` lives for the whole run and only its
parameters change, so evaluation compiles once.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from jax.sharding import Mesh

from jaxreason.data.batching import SFTFormat, prompt_token_ids
from jaxreason.model.config import ModelConfig
from jaxreason.model.model import Model

log = logging.getLogger(__name__)


class TaskEvaluator:
    """`evaluator(params) -> metrics` on fixed held-out `records` of `task`.

    Metrics: accuracy (share graded correct), mean_reward, answer_rate (share with a
    well-formed answer) and num_examples; `last_samples` keeps a few (prompt record,
    completion, grade) triples for inspection.
    """

    def __init__(self, model_config: ModelConfig, mesh: Mesh, tokenizer: Any, task: Any,
                 records: Sequence[dict[str, Any]], fmt: SFTFormat, *, max_new_tokens: int,
                 batch_size: int, grading_workers: int | None = None) -> None:
        from jaxreason.sampling import Sampler

        self.model_config, self.mesh = model_config, mesh
        self.tokenizer, self.task, self.records = tokenizer, task, list(records)
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.grading_workers = grading_workers
        self.prompts = [prompt_token_ids(task.prompt(r, chat=fmt.chat), tokenizer, fmt)
                        for r in self.records]
        self._sampler_cls = Sampler
        self._sampler: Any = None
        self.last_samples: list[tuple[dict[str, Any], str, Any]] = []

    def __call__(self, params: Any) -> dict[str, float]:
        from jaxreason.sampling import SamplingParams
        from jaxreason.tasks import grade_batch

        if self._sampler is None:
            self._sampler = self._sampler_cls(Model(self.model_config, params, self.mesh),
                                              self.tokenizer)
        else:
            self._sampler.update_params(params)
        sampling = SamplingParams(temperature=0.0, max_new_tokens=self.max_new_tokens)
        texts: list[str] = []
        for start in range(0, len(self.prompts), self.batch_size):
            results = self._sampler.generate(self.prompts[start:start + self.batch_size],
                                             sampling)
            texts.extend(r.text for r in results)
        grades = grade_batch(self.task, self.records, texts, num_workers=self.grading_workers)
        self.last_samples = list(zip(self.records, texts, grades))[:8]
        n = max(len(grades), 1)
        return {
            "accuracy": sum(g.correct for g in grades) / n,
            "mean_reward": sum(g.reward for g in grades) / n,
            "answer_rate": sum(g.extracted is not None for g in grades) / n,
            "num_examples": float(len(grades)),
        }
