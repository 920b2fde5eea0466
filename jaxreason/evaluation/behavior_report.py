"""Reasoning behaviors over the checkpoints of a run: does the model backtrack more as it gets
better? (ASTRO reports a Pearson correlation above 0.8 between backtracks per answer and
accuracy across RL checkpoints; the cognitive-behaviors study tracks all four behaviors.)

Reads the in-training evaluations a run wrote (`<run>/eval/step_<k>/items.jsonl`, one per
`eval.every` steps and at the end), counts the behaviors of every greedy completion
(`jaxreason.behaviors`), and writes `behaviors.json` (per step: accuracy and mean counts; the
Pearson correlation of each behavior with accuracy across steps) and `behaviors.png`.
"""

from __future__ import annotations

import glob
import json
import os
import re
from typing import Any

from jaxreason import behaviors


def behavior_curve(run_dir: str, domain: str) -> list[dict[str, float]]:
    """Per evaluated step (ascending): step, accuracy, num_items and the mean behavior counts."""
    points = []
    for path in glob.glob(os.path.join(run_dir, "**", "eval", "step_*", "items.jsonl"),
                          recursive=True) + glob.glob(
            os.path.join(run_dir, "eval", "step_*", "items.jsonl")):
        match = re.search(r"step_(\d+)", path)
        if match is None:
            continue
        with open(path) as f:
            items = [json.loads(line) for line in f if line.strip()]
        items = [it for it in items if it.get("greedy")]
        greedy = [it["greedy"] for it in items]
        if not greedy:
            continue
        counts = behaviors.average([behaviors.count(it["greedy"]["completion"], domain,
                                                    target=_target(it, domain))
                                    for it in items])
        stage = os.path.relpath(path, run_dir).split(os.sep)[0]
        points.append({"stage": stage if stage != "eval" else "", "step": int(match.group(1)),
                       "accuracy": sum(g["correct"] for g in greedy) / len(greedy),
                       "num_items": len(greedy), **counts})
    unique = {(p["stage"], p["step"]): p for p in points}
    return [unique[k] for k in sorted(unique)]


def _target(item: dict[str, Any], domain: str) -> Any:
    """The Countdown target of an evaluated item, when its record has one: a wrong answer's
    value is no guide to the target the classifier would otherwise infer from it."""
    record = item.get("record")
    if domain == "countdown" and isinstance(record, dict):
        return record.get("target")
    return None


def correlations(points: list[dict[str, float]]) -> dict[str, float]:
    """Pearson correlation of each behavior's mean count with accuracy across the points."""
    accuracy = [p["accuracy"] for p in points]
    return {key: behaviors.pearson([p[key] for p in points], accuracy)
            for key in behaviors.KEYS}


def write_behavior_report(run_dir: str, domain: str, out_dir: str | None = None
                          ) -> dict[str, Any]:
    """`behaviors.json` and `behaviors.png` in `out_dir` (default: the run directory)."""
    out_dir = out_dir or run_dir
    points = behavior_curve(run_dir, domain)
    report = {"domain": domain, "points": points, "pearson_with_accuracy": correlations(points)}
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "behaviors.json"), "w") as f:
        json.dump(report, f, indent=2, default=float)
    if points:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        xs = list(range(len(points)))
        labels = [f"{p['stage']}:{p['step']}" if p["stage"] else str(p["step"]) for p in points]
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
        top.plot(xs, [p["accuracy"] for p in points], "o-k")
        top.set_ylabel("held-out accuracy")
        for key in behaviors.KEYS:
            bottom.plot(xs, [p[key] for p in points], "o-", label=key)
        bottom.set_ylabel("mean count per response")
        bottom.set_xticks(xs, labels, rotation=45, fontsize=7)
        bottom.legend(fontsize=8)
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
        fig.suptitle(f"behaviors over training ({domain})")
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "behaviors.png"), dpi=120)
        plt.close(fig)
    return report
