"""Accuracy against generated tokens per problem, for each test-time scaling method on one
model and benchmark: the report behind "which way of spending inference compute pays".

From one batch of `max(ns)` samples per problem (so every N compares the same samples):
best-of-N with the exact verifier (= pass@N, the coverage bound), best-of-N by the policy's
mean log-prob (and weighted: scores summed per answer), self-consistency (maj@N) and probability-weighted self-consistency, each at
tokens = the mean total length of the first N samples. Then step beam search at each
(width, branching) and adaptive self-consistency at each threshold, with their own token
counts. `write_scaling_report` saves the data (JSON) and the curve (PNG).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Sequence

import numpy as np

from jaxreason.evaluation.estimators import pass_at_k
from jaxreason.evaluation.step_search import (BeamSettings, adaptive_self_consistency,
                                              step_beam_search)
from jaxreason.evaluation.test_time import (best_of_n, extracted_answer, mean_logprob, oracle,
                                            picked_correct, self_consistency,
                                            weighted_best_of_n)


@dataclasses.dataclass(frozen=True)
class ScalingSettings:
    """ns: sample counts per problem (best-of-N, self-consistency); temperature, top_p,
    max_new_tokens, stop: sampling; beams: (width, branching) pairs of step beam search with
    `beam_rounds` steps of at most `beam_step_tokens` ending at `delimiter`; thresholds:
    adaptive self-consistency vote shares (chunk `adaptive_chunk`, at most max(ns) samples);
    seed; grading_workers."""

    ns: tuple[int, ...] = (1, 2, 4, 8, 16)
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 64
    stop: tuple[str, ...] = ()
    beams: tuple[tuple[int, int], ...] = ((2, 2), (4, 4))
    beam_rounds: int = 6
    beam_step_tokens: int = 24
    delimiter: tuple[str, ...] = ("\n",)
    thresholds: tuple[float, ...] = (0.5, 0.75)
    adaptive_chunk: int = 2
    seed: int = 0
    grading_workers: int | None = 0


def scaling_curves(sampler: Any, task: Any, records: Sequence[Any],
                   prompts: Sequence[Sequence[int]], settings: ScalingSettings,
                   params: Any = None) -> dict[str, list[dict[str, float]]]:
    """{method: [{"tokens", "accuracy", ...}, ...]} (see the module docstring)."""
    from jaxreason.generation import sample_and_grade
    from jaxreason.sampling import SamplingParams

    n_max = max(settings.ns)
    out = sample_and_grade(sampler, prompts, records, SamplingParams(
        temperature=settings.temperature, top_p=settings.top_p, n=n_max,
        max_new_tokens=settings.max_new_tokens, stop=settings.stop, seed=settings.seed),
        task=task, params=params, num_workers=settings.grading_workers)
    lengths = out.by_prompt(out.lengths)
    correct = out.by_prompt(out.correct)
    curves: dict[str, list[dict[str, float]]] = {
        "pass@N (oracle best-of-N)": [], "best-of-N (mean log-prob)": [],
        "weighted best-of-N (mean log-prob)": [], "self-consistency": [],
        "weighted self-consistency": []}
    for n in settings.ns:
        tokens = float(lengths[:, :n].sum(axis=1).mean())
        coverage = np.mean([pass_at_k(n_max, int(c.sum()), n) for c in correct])
        curves["pass@N (oracle best-of-N)"].append(
            {"n": n, "tokens": tokens, "accuracy": float(coverage),
             "first_n_oracle": float(picked_correct(out, best_of_n(out, oracle, n)).mean())})
        curves["best-of-N (mean log-prob)"].append(
            {"n": n, "tokens": tokens,
             "accuracy": float(picked_correct(out, best_of_n(out, mean_logprob, n)).mean())})
        curves["weighted best-of-N (mean log-prob)"].append(
            {"n": n, "tokens": tokens, "accuracy": float(picked_correct(
                out, weighted_best_of_n(out, extracted_answer, mean_logprob, n)).mean())})
        curves["self-consistency"].append(
            {"n": n, "tokens": tokens, "accuracy": float(picked_correct(
                out, self_consistency(out, extracted_answer, n)).mean())})
        curves["weighted self-consistency"].append(
            {"n": n, "tokens": tokens, "accuracy": float(picked_correct(
                out, self_consistency(out, extracted_answer, n, weighted=True)).mean())})
    curves["step beam search"] = []
    for width, branching in settings.beams:
        result = step_beam_search(sampler, prompts, BeamSettings(
            width=width, branching=branching, rounds=settings.beam_rounds,
            delimiter=settings.delimiter, max_step_tokens=settings.beam_step_tokens,
            temperature=settings.temperature, top_p=settings.top_p, seed=settings.seed),
            params=params)
        graded = _grade_texts(task, records, result.texts, settings.grading_workers)
        curves["step beam search"].append(
            {"width": width, "branching": branching,
             "tokens": float(result.tokens_generated.mean()), "accuracy": float(graded.mean())})
    curves["adaptive self-consistency"] = []
    for threshold in settings.thresholds:
        adaptive = adaptive_self_consistency(
            sampler, task, records, prompts, threshold=threshold,
            chunk=settings.adaptive_chunk, min_samples=settings.adaptive_chunk,
            max_samples=n_max, temperature=settings.temperature,
            max_new_tokens=settings.max_new_tokens, stop=settings.stop, seed=settings.seed,
            params=params, grading_workers=settings.grading_workers)
        curves["adaptive self-consistency"].append(
            {"threshold": threshold, "tokens": float(adaptive.tokens_generated.mean()),
             "samples": float(adaptive.samples_used.mean()),
             "accuracy": float(adaptive.correct.mean())})
    return curves


def _grade_texts(task: Any, records: Sequence[Any], texts: Sequence[str],
                 workers: int | None) -> np.ndarray:
    from jaxreason.tasks import grade_batch

    return np.array([g.correct for g in grade_batch(task, list(records), list(texts),
                                                     num_workers=workers)])


def write_scaling_report(directory: str, curves: dict[str, list[dict[str, float]]],
                         title: str = "") -> tuple[str, str]:
    """`scaling.json` and `scaling.png` (accuracy vs generated tokens per problem)."""
    os.makedirs(directory, exist_ok=True)
    json_path = os.path.join(directory, "scaling.json")
    with open(json_path, "w") as f:
        json.dump(curves, f, indent=2)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method, points in curves.items():
        if not points:
            continue
        xs, ys = [p["tokens"] for p in points], [p["accuracy"] for p in points]
        style = "o--" if method.startswith("pass@N") else "o-"
        ax.plot(xs, ys, style, label=method)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("generated tokens per problem")
    ax.set_ylabel("accuracy")
    ax.set_title(title or "test-time scaling")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    png_path = os.path.join(directory, "scaling.png")
    fig.tight_layout()
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    return json_path, png_path
