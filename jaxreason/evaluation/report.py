"""From per-item results to the figures of a report, each with a bootstrap interval.

An item's results are its greedy completion (if run) and its n samples, each with `correct`,
`extracted` (the grader's answer) and `tokens` (length). Figures: greedy accuracy; pass@1 as
the mean over samples (ASTRO's "pass@1 over 16 samples", SRL's Avg@32); unbiased pass@k and
maj@k for k = 1, 2, 4, ... up to n; mean and max response length. Intervals resample items.
"""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

import numpy as np

from jaxreason.evaluation.estimators import bootstrap_ci, majority_vote, pass_at_k


def ks_up_to(n: int) -> list[int]:
    """1, 2, 4, ... < n, and n."""
    ks = [1]
    while ks[-1] * 2 < n:
        ks.append(ks[-1] * 2)
    return ks + ([n] if n > 1 else [])


def majority_correct(samples: Sequence[dict[str, Any]], k: int) -> bool:
    """maj@k of one item: whether the most voted extracted answer of its first k samples is a
    correct one (unextracted answers do not vote)."""
    first = samples[:k]
    winner = majority_vote([s.get("extracted") for s in first])
    return winner is not None and any(s["correct"] for s in first
                                      if s.get("extracted") == winner)


def _figure(values: Sequence[float], seed: int) -> dict[str, float]:
    values = np.asarray(values, np.float64)
    low, high = bootstrap_ci(values, seed=seed)
    return {"value": float(values.mean()) if values.size else float("nan"),
            "ci_low": low, "ci_high": high}


def behavior_domain(task_name: str) -> str | None:
    """The behavior classifier's domain for a task's completions (None: not classified)."""
    return {"countdown": "countdown", "math": "math", "gsm8k": "math"}.get(task_name)


def figures(items: Sequence[dict[str, Any]], seed: int = 0, domain: str | None = None
            ) -> dict[str, Any]:
    """The report figures of one benchmark's items (see the module docstring). With a
    `domain` ("countdown" / "math"), `behaviors` holds the mean counts per response of the
    four reasoning behaviors (`jaxreason.behaviors`) over the greedy completions (else the
    samples)."""
    out: dict[str, Any] = {"num_items": len(items)}
    if domain is not None:
        from jaxreason import behaviors

        texts = [it["greedy"]["completion"] for it in items if it.get("greedy")] or [
            s["completion"] for it in items for s in it.get("samples", [])]
        out["behaviors"] = behaviors.average(behaviors.count_many(texts, domain))
    greedy = [it["greedy"] for it in items if it.get("greedy") is not None]
    if greedy:
        out["greedy_accuracy"] = _figure([g["correct"] for g in greedy], seed)
        out["greedy_length_mean"] = float(np.mean([g["tokens"] for g in greedy]))
    sampled = [it["samples"] for it in items if it.get("samples")]
    if sampled:
        n = min(len(s) for s in sampled)
        out["samples_per_item"] = n
        out["pass@1_mean"] = _figure([np.mean([x["correct"] for x in s[:n]]) for s in sampled],
                                     seed)
        for k in ks_up_to(n):
            out[f"pass@{k}"] = _figure([pass_at_k(n, sum(x["correct"] for x in s[:n]), k)
                                        for s in sampled], seed)
            out[f"maj@{k}"] = _figure([majority_correct(s, k) for s in sampled], seed)
        lengths = [x["tokens"] for s in sampled for x in s[:n]]
        out["response_length_mean"] = float(np.mean(lengths))
        out["response_length_max"] = float(np.max(lengths))
    return out


def markdown_table(report: dict[str, dict[str, Any]]) -> str:
    """One row per benchmark: each figure as value [low, high]."""
    keys: list[str] = []
    for figs in report.values():
        for key, value in figs.items():
            if isinstance(value, dict) and "value" in value and key not in keys:
                keys.append(key)
    lines = ["| benchmark | items | " + " | ".join(keys) + " | mean length |",
             "|---" * (len(keys) + 3) + "|"]
    for name, figs in report.items():
        cells = []
        for key in keys:
            f = figs.get(key)
            cells.append("" if f is None else
                         f"{f['value']:.3f} [{f['ci_low']:.3f}, {f['ci_high']:.3f}]")
        length = figs.get("response_length_mean", figs.get("greedy_length_mean", float("nan")))
        lines.append(f"| {name} | {figs['num_items']} | " + " | ".join(cells) +
                     f" | {length:.1f} |")
    return "\n".join(lines) + "\n"


def write_report(directory: str, report: dict[str, dict[str, Any]],
                 meta: dict[str, Any] | None = None) -> tuple[str, str]:
    """`report.json` (figures + meta) and `report.md` (the table) in `directory`."""
    os.makedirs(directory, exist_ok=True)
    json_path, md_path = (os.path.join(directory, "report.json"),
                          os.path.join(directory, "report.md"))
    with open(json_path + ".tmp", "w") as f:
        json.dump({"benchmarks": report, "meta": meta or {}}, f, indent=2, default=float)
    os.replace(json_path + ".tmp", json_path)
    with open(md_path, "w") as f:
        f.write(markdown_table(report))
    return json_path, md_path
