"""Evaluate a model on one benchmark's items: greedy and sampled completions, graded, written
per item, resumable, summarized with bootstrap intervals.

Items are processed in fixed batches (`batch_size` items, in file order). Each finished batch
is appended to `items.jsonl` (one line per item: its record, the greedy completion and the n
samples, each with the grader's answer and verdict, its length and finish reason), so a run
can be inspected line by line, and a killed run started again skips every finished batch. The
sampling seed of a batch depends only on (seed, batch index), so a resumed run produces the
same samples as an uninterrupted one. Sampling and grading go through
`jaxreason.generation.sample_and_grade`, the same road as GRPO's rollouts and the in-training
evaluator.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any, Sequence

import numpy as np

from jaxreason.evaluation.report import figures

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class EvalSettings:
    """greedy: one greedy completion per item; n: sampled completions per item (0: none) at
    temperature / top_p; max_new_tokens; stop: stop strings; batch_size: items per sampling
    call; seed; grading_workers: grading processes (0: in this process, None: default pool);
    item_timeout_s: per-completion grading limit."""

    greedy: bool = True
    n: int = 0
    temperature: float = 0.6
    top_p: float = 0.95
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    batch_size: int = 32
    seed: int = 0
    grading_workers: int | None = None
    item_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.greedy and self.n < 1:
            raise ValueError("EvalSettings: nothing to evaluate (greedy=False and n=0)")
        if self.n and self.temperature <= 0:
            raise ValueError("EvalSettings: sampled completions need temperature > 0")


def _completion(generations: Any, row: int) -> dict[str, Any]:
    grade = generations.grades[row]
    length = int(generations.lengths[row])
    raw = generations.raw_logprobs[row, :length]
    return {"completion": generations.texts[row], "extracted": grade.extracted,
            "correct": bool(grade.correct), "reward": float(grade.reward),
            "reason": grade.reason, "tokens": length,
            "finish": generations.finish_reasons[row],
            "mean_logprob": float(raw.mean()) if length else 0.0}


def _read_finished(path: str) -> dict[int, list[dict[str, Any]]]:
    """Finished batches of an items file (a partial last batch, from a kill, is dropped)."""
    batches: dict[int, list[dict[str, Any]]] = {}
    if not os.path.exists(path):
        return batches
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                break  # a line cut by a kill: everything after it is redone
            batches.setdefault(int(item["batch"]), []).append(item)
    return {b: items for b, items in batches.items()
            if len(items) == len({it["index"] for it in items}) and items}


def run_items(sampler: Any, task: Any, records: Sequence[dict[str, Any]],
              prompts: Sequence[Sequence[int]], settings: EvalSettings, *,
              items_file: str | None = None, params: Any = None, progress: bool = False
              ) -> list[dict[str, Any]]:
    """Per-item results of every record (resuming from `items_file` when it exists)."""
    from jaxreason.generation import sample_and_grade
    from jaxreason.sampling import SamplingParams

    if len(records) != len(prompts):
        raise ValueError(f"{len(records)} records but {len(prompts)} prompts")
    size = settings.batch_size
    num_batches = -(-len(records) // size)
    finished = _read_finished(items_file) if items_file else {}
    expected = {b: min(size, len(records) - b * size) for b in range(num_batches)}
    finished = {b: v for b, v in finished.items() if len(v) == expected.get(b, -1)}
    if items_file:  # rewrite without partial batches, then append
        os.makedirs(os.path.dirname(os.path.abspath(items_file)), exist_ok=True)
        with open(items_file + ".tmp", "w") as f:
            for b in sorted(finished):
                for item in finished[b]:
                    f.write(json.dumps(item) + "\n")
        os.replace(items_file + ".tmp", items_file)
    todo = [b for b in range(num_batches) if b not in finished]
    if finished:
        log.info("evaluation: %d of %d batches already done (%s)", len(finished), num_batches,
                 items_file)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="evaluate", unit="batch", leave=False)
    for b in todo:
        lo, hi = b * size, min((b + 1) * size, len(records))
        batch_records, batch_prompts = list(records[lo:hi]), [list(p) for p in prompts[lo:hi]]
        items = [{"index": i, "batch": b, "record": batch_records[i - lo]} for i in range(lo, hi)]
        common = dict(task=task, params=params, num_workers=settings.grading_workers,
                      item_timeout_s=settings.item_timeout_s)
        if settings.greedy:
            out = sample_and_grade(sampler, batch_prompts, batch_records, SamplingParams(
                temperature=0.0, max_new_tokens=settings.max_new_tokens, stop=settings.stop),
                **common)
            for r in range(out.num_rows):
                items[int(out.prompt_index[r])]["greedy"] = _completion(out, r)
        if settings.n:
            seed = (settings.seed * 1_000_003 + b * 7_919) % (2 ** 31)
            out = sample_and_grade(sampler, batch_prompts, batch_records, SamplingParams(
                temperature=settings.temperature, top_p=settings.top_p, n=settings.n,
                seed=seed, max_new_tokens=settings.max_new_tokens, stop=settings.stop),
                **common)
            for item in items:
                item["samples"] = []
            for r in range(out.num_rows):
                items[int(out.prompt_index[r])]["samples"].append(_completion(out, r))
        finished[b] = items
        if items_file:
            with open(items_file, "a") as f:
                for item in items:
                    f.write(json.dumps(item, default=str) + "\n")
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return [item for b in sorted(finished) for item in finished[b]]


def evaluate(sampler: Any, task: Any, records: Sequence[dict[str, Any]],
             prompts: Sequence[Sequence[int]], settings: EvalSettings, *,
             items_file: str | None = None, params: Any = None, progress: bool = False,
             seed: int = 0, domain: str | None = None
             ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(figures, per-item results) of one benchmark (`domain`: behavior counts, see
    `report.figures`)."""
    items = run_items(sampler, task, records, prompts, settings, items_file=items_file,
                      params=params, progress=progress)
    return figures(items, seed=seed, domain=domain), items


def answer_rate(items: Sequence[dict[str, Any]]) -> float:
    """Share of greedy completions with an extracted answer."""
    greedy = [it["greedy"] for it in items if it.get("greedy")]
    return float(np.mean([g["extracted"] is not None for g in greedy])) if greedy else 0.0
