"""The results table of an SRL comparison pipeline (`configs/srl_countdown_tiny.py`).

    python -m jaxreason.train.srl_report WORKDIR [WORKDIR ...] [--json]

For each work directory (one seed): the hard split (pass@n of the candidate pool under the
warm start, hard train / held-out sizes), and per arm the end-to-end figures of its
`eval_<arm>` stage on the hard held-out problems (greedy accuracy, pass@1 mean over n samples,
pass@n), and the trends of its GRPO training from `metrics.jsonl`: the share of groups the
std filter dropped, the mean reward, the well-formed share and mean reward of the well-formed
completions (for SRL: the mean similarity), each over the first and the last 5 steps, and the
in-training held-out evaluation at the start and the end (for SRL: greedy mean similarity on
the validation step instances). Below the table, the curves: per arm, the in-training held-out
figure at every evaluation, and the mean reward of well-formed completions (for SRL: the mean
similarity) and the share of groups filtered over consecutive windows of `--window` steps.
Arms or stages that have not run yet are shown empty.
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


def _windows(records: list[dict[str, Any]], key: str, size: int) -> list[float | None]:
    """Mean of `key` over steps 1..size, size+1..2 size, ... (as _window: the reward of
    well-formed completions only over steps that had some)."""
    out = []
    for start in range(0, len(records), size):
        out.append(_window(records[start:start + size], key, True, n=size))
    return out


def arm_summary(workdir: str, arm: str, window: int = 10) -> dict[str, Any]:
    out: dict[str, Any] = {"eval": _eval_figures(workdir, arm)}
    stage = os.path.join(workdir, arm)
    train = _records(stage, "train")
    if arm != "sft" and train:
        out["steps"] = len(train)
        for key in ("groups_filtered_fraction", "reward_mean", "format_ok_fraction",
                    "reward_mean_format_ok", "accuracy"):
            out[key] = {"first5": _window(train, key, True), "last5": _window(train, key, False),
                        "mean": _window(train, key, True, n=len(train))}
        out["curves"] = {"window": window, **{
            key: _windows(train, key, window)
            for key in ("reward_mean_format_ok", "groups_filtered_fraction")}}
        evals = _records(stage, "eval")
        if evals:
            out["in_training_eval"] = {"start": evals[0].get("mean_reward"),
                                       "end": evals[-1].get("mean_reward"),
                                       "start_accuracy": evals[0].get("accuracy"),
                                       "end_accuracy": evals[-1].get("accuracy")}
            out["curves"]["eval"] = [{"step": r["step"], "mean_reward": r.get("mean_reward"),
                                      "accuracy": r.get("accuracy")} for r in evals]
    return out


def report(workdir: str, window: int = 10) -> dict[str, Any]:
    hard = _read_json(os.path.join(workdir, "hard", "summary.json")) or {}
    seed = None
    for arm in ARMS:  # the evaluation reports record the run's seed
        meta = (_read_json(os.path.join(workdir, f"eval_{arm}", "report.json")) or {}).get("meta")
        if meta and "seed" in meta:
            seed = meta["seed"]
            break
    return {"workdir": workdir, "seed": seed,
            "hard": {k: v for k, v in hard.items() if k not in ("outputs", "status")},
            "arms": {arm: arm_summary(workdir, arm, window) for arm in ARMS}}


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
    curves = [(arm, s["curves"], s.get("in_training_eval")) for arm, s in result["arms"].items()
              if "curves" in s]
    if curves:
        size = curves[0][1]["window"]
        lines += ["", f"Curves (training: means over windows of {size} steps; held-out: every "
                  "in-training evaluation, step: value):", ""]
        for arm, c, _ in curves:
            sim = " ".join(_f(v) or "-" for v in c["reward_mean_format_ok"])
            filt = " ".join(_f(v) or "-" for v in c["groups_filtered_fraction"])
            held = " ".join(f"{r['step']}: {_f(r['mean_reward'])}" for r in c.get("eval", []))
            lines.append(f"- {arm}: reward of well-formed {sim}; groups filtered {filt}; "
                         f"held-out {held}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdirs", nargs="+")
    parser.add_argument("--json", action="store_true", help="print one JSON object too")
    parser.add_argument("--window", type=int, default=10, help="steps per curve window")
    args = parser.parse_args()
    results = [report(w, args.window) for w in args.workdirs]
    for result in results:
        print(markdown(result) + "\n")
    if args.json:
        print(json.dumps(results, default=float))


if __name__ == "__main__":
    main()
