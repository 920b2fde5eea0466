"""The per-iteration report of an Iterative RPO pipeline (`(pairs,dpo)xN`), from its files.

    python -m jaxreason.train.rpo_report WORKDIR [WORKDIR ...]

For each work directory (one arm) and each iteration k: held-out accuracy after `dpo.k` (and
of the starting model: the stage before `pairs.1`), the pairs of `pairs.k` (number, sample
accuracy, share of prompts without a pair, all-correct / all-wrong prompts), and the trends of
`dpo.k`'s training: the mean chosen and rejected response log-probs of the first and the last
train step, relative to the frozen reference (the model `dpo.k` started from), as the Iterative
RPO paper's diagnostic ("chosen rises under DPO + NLL, falls under DPO alone"). Prints a
Markdown table per work directory and, with `--json`, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any


def _read_json(path: str) -> dict[str, Any]:
    with open(path) as f:
        return json.load(f)


def _train_records(stage_dir: str) -> list[dict[str, Any]]:
    path = os.path.join(stage_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    by_step: dict[int, dict[str, Any]] = {}
    with open(path) as f:
        for line in f:
            record = json.loads(line)
            if record.get("kind") == "train":
                by_step[record["step"]] = record
    return [by_step[s] for s in sorted(by_step)]


def _window_mean(records: list[dict[str, Any]], key: str, first: bool, n: int = 5
                 ) -> float | None:
    values = [r[key] for r in records if key in r]
    if not values:
        return None
    window = values[:n] if first else values[-n:]
    return sum(window) / len(window)


def iteration_rows(workdir: str) -> list[dict[str, Any]]:
    """One dict per stage run of interest, in pipeline order."""
    pipeline = _read_json(os.path.join(workdir, "pipeline.json"))["stages"]
    rows: list[dict[str, Any]] = []
    start_accuracy = None
    for run_id, info in pipeline.items():
        summary_file = os.path.join(info["dir"], "summary.json")
        summary = _read_json(summary_file) if os.path.exists(summary_file) else {}
        if info["trainer"] in ("sft", "grpo") and "eval" in summary:
            start_accuracy = summary["eval"].get("accuracy")
            rows.append({"stage": run_id, "iteration": 0, "accuracy": start_accuracy})
        elif info["trainer"] == "pairs":
            rows.append({"stage": run_id, "iteration": info["iteration"],
                         **{k: summary.get(k) for k in (
                             "num_pairs", "sample_accuracy", "no_pair_share",
                             "all_correct_prompts", "all_wrong_prompts", "num_prompts",
                             "temperature")}})
        elif info["trainer"] == "dpo":
            records = _train_records(info["dir"])
            row: dict[str, Any] = {"stage": run_id, "iteration": info["iteration"],
                                   "accuracy": (summary.get("eval") or {}).get("accuracy"),
                                   "steps": summary.get("step")}
            for side in ("chosen", "rejected"):
                last = _window_mean(records, f"{side}_logp", first=False)
                ref = _window_mean(records, f"ref_{side}_logp", first=False)
                row[f"{side}_logp_end"] = last
                row[f"{side}_logp_change"] = (last - ref if last is not None and ref is not None
                                              else None)
            row["reward_accuracy_end"] = _window_mean(records, "reward_accuracy", first=False)
            row["nll_start"] = _window_mean(records, "nll", first=True)
            row["nll_end"] = _window_mean(records, "nll", first=False)
            rows.append(row)
    return rows


def _fmt(value: Any, spec: str = ".3f") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def markdown(workdir: str, rows: list[dict[str, Any]]) -> str:
    pairs = {r["iteration"]: r for r in rows if r["stage"].startswith("pairs")}
    lines = [f"{workdir}", "",
             "| iteration | held-out acc | pairs | sample acc | no-pair share | "
             "chosen logp change | rejected logp change | chosen NLL/token start -> end |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["iteration"] == 0 and "accuracy" in r and not r["stage"].startswith("pairs"):
            lines.append(f"| 0 ({r['stage']}) | {_fmt(r['accuracy'])} | | | | | | |")
        elif r["stage"].startswith("dpo") or "chosen_logp_change" in r:
            p = pairs.get(r["iteration"], {})
            lines.append(
                f"| {r['iteration']} | {_fmt(r['accuracy'])} | {_fmt(p.get('num_pairs'))} | "
                f"{_fmt(p.get('sample_accuracy'))} | {_fmt(p.get('no_pair_share'))} | "
                f"{_fmt(r['chosen_logp_change'], '+.2f')} | "
                f"{_fmt(r['rejected_logp_change'], '+.2f')} | "
                f"{_fmt(r['nll_start'])} -> {_fmt(r['nll_end'])} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdirs", nargs="+")
    parser.add_argument("--json", action="store_true", help="also print one JSON object")
    args = parser.parse_args()
    everything = {}
    for workdir in args.workdirs:
        rows = iteration_rows(workdir)
        everything[workdir] = rows
        print(markdown(workdir, rows))
        print()
    if args.json:
        print(json.dumps(everything))


if __name__ == "__main__":
    main()
