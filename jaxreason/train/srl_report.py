"""The results table of an SRL comparison pipeline (`configs/srl_countdown_tiny.py`).

    python -m jaxreason.train.srl_report WORKDIR [WORKDIR ...] [--json]

For each work directory (one seed): the hard split (pass@n of the candidate pool under the
warm start, hard train / held-out sizes), and per arm the end-to-end figures of its
`eval_<arm>` stage on the hard held-out problems (greedy accuracy, pass@1 mean over n samples,
pass@n), and the trends of its GRPO training from `metrics.jsonl`: the share of groups the
std filter dropped, the mean reward, the well-formed share and mean reward of the well-formed
completions (for SRL: the mean similarity), each over the first and the last 5 steps, and the
in-training held-out evaluation at the start and the end (for SRL: greedy mean similarity on
the validation step instances). Arms or stages that have not run yet are shown empty.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

ARMS = ("sft", "rlvr", "srl", "srl_rlvr")


def _read_json(path: str) -> dict[str, Any] | None:
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _records(stage_dir: str, kind: str) -> list[dict[str, Any]]:
    path = os.path.join(stage_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    by_step: dict[int, dict[str, Any]] = {}
    with open(path) as f:
        for line in f:
            record = json.loads(line)
            if record.get("kind") == kind:
                by_step[record["step"]] = record
    return [by_step[s] for s in sorted(by_step)]


def _window(records: list[dict[str, Any]], key: str, first: bool, n: int = 5) -> float | None:
    """Mean of `key` over the first / last n steps that have it (the reward of well-formed
    completions only over steps that had some)."""
    values = [r[key] for r in records if key in r and not (
        key == "reward_mean_format_ok" and r.get("format_ok_fraction", 1.0) == 0.0)]
    values = values[:n] if first else values[-n:]
    return sum(values) / len(values) if values else None


def _eval_figures(workdir: str, arm: str) -> dict[str, float]:
    report = _read_json(os.path.join(workdir, f"eval_{arm}", "report.json"))
    if report is None:
        return {}
    figures = next(iter(report["benchmarks"].values()))
    out = {"items": figures["num_items"]}
    for key, value in figures.items():
        if isinstance(value, dict) and "value" in value and (
                key in ("greedy_accuracy", "pass@1_mean") or key.startswith("pass@")):
            out[key] = value["value"]
    return out


def arm_summary(workdir: str, arm: str) -> dict[str, Any]:
    out: dict[str, Any] = {"eval": _eval_figures(workdir, arm)}
    stage = os.path.join(workdir, arm)
    train = _records(stage, "train")
    if arm != "sft" and train:
        out["steps"] = len(train)
        for key in ("groups_filtered_fraction", "reward_mean", "format_ok_fraction",
                    "reward_mean_format_ok", "accuracy"):
            out[key] = {"first5": _window(train, key, True), "last5": _window(train, key, False),
                        "mean": _window(train, key, True, n=len(train))}
        evals = _records(stage, "eval")
        if evals:
            out["in_training_eval"] = {"start": evals[0].get("mean_reward"),
                                       "end": evals[-1].get("mean_reward"),
                                       "start_accuracy": evals[0].get("accuracy"),
                                       "end_accuracy": evals[-1].get("accuracy")}
    return out


def report(workdir: str) -> dict[str, Any]:
    hard = _read_json(os.path.join(workdir, "hard", "summary.json")) or {}
    seed = None
    for arm in ARMS:  # the evaluation reports record the run's seed
        meta = (_read_json(os.path.join(workdir, f"eval_{arm}", "report.json")) or {}).get("meta")
        if meta and "seed" in meta:
            seed = meta["seed"]
            break
    return {"workdir": workdir, "seed": seed,
            "hard": {k: v for k, v in hard.items() if k not in ("outputs", "status")},
            "arms": {arm: arm_summary(workdir, arm) for arm in ARMS}}


def _f(value: Any) -> str:
    return "" if value is None else f"{value:.3f}"


def markdown(result: dict[str, Any]) -> str:
    hard = result["hard"]
    n = hard.get("samples_per_record", 8)
    lines = [f"### {result['workdir']} (seed {result['seed']})", "",
             f"Hard split: pass@{n} {_f(hard.get(f'pass@{n}'))} of {hard.get('num_records')} "
             f"candidate problems under the warm start; {hard.get('num_hard')} hard "
             f"({hard.get('num_train')} train, {hard.get('num_held_out')} held out).", "",
             "| arm | greedy acc | pass@1 (mean of 8) | pass@8 | GRPO steps | groups filtered "
             "(first 5 -> last 5 steps) | well-formed | reward of well-formed (first 5 -> last "
             "5) | in-training held-out (start -> end) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for arm, s in result["arms"].items():
        e = s["eval"]
        row = [arm, _f(e.get("greedy_accuracy")), _f(e.get("pass@1_mean")),
               _f(e.get(f"pass@{n}"))]
        if "steps" in s:
            g, fmt, sim = (s["groups_filtered_fraction"], s["format_ok_fraction"],
                           s["reward_mean_format_ok"])
            ev = s.get("in_training_eval", {})
            row += [str(s["steps"]), f"{_f(g['first5'])} -> {_f(g['last5'])}",
                    f"{_f(fmt['first5'])} -> {_f(fmt['last5'])}",
                    f"{_f(sim['first5'])} -> {_f(sim['last5'])}",
                    f"{_f(ev.get('start'))} -> {_f(ev.get('end'))}"]
        else:
            row += [""] * 5
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdirs", nargs="+")
    parser.add_argument("--json", action="store_true", help="print one JSON object too")
    args = parser.parse_args()
    results = [report(w) for w in args.workdirs]
    for result in results:
        print(markdown(result) + "\n")
    if args.json:
        print(json.dumps(results, default=float))


if __name__ == "__main__":
    main()
