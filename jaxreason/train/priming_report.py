"""The results of a priming study (`jaxreason.train.priming_study`): per arm, accuracy at the
start of RL and the best within the budget, behavior counts at the start and over training,
over seeds, beside the paper's numbers (ALGORITHMS.md 4.5).

    python launch/priming_report.py --workdir=DIR

Reads `<workdir>/seed_<s>/rl_<arm>/eval/step_<k>/items.jsonl` (greedy held-out completions,
counted by `jaxreason.evaluation.behavior_report.behavior_curve`), the RL stages'
`metrics.jsonl` (mean training reward) and `seed_<s>/priming_sets.json`, and writes
`priming_report.json`, `priming_report.md` (the tables), `priming_accuracy.png` and
`priming_behaviors.png` into the workdir. Arms or seeds that have not run are left out.
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
from typing import Any

from jaxreason import behaviors
from jaxreason.evaluation.behavior_report import behavior_curve

# Test accuracy of Llama-3.2-3B under PPO on Countdown (ALGORITHMS.md 4.5, from the paper's
# repository): (accuracy at step 0, best accuracy within 250 steps), in %.
PAPER = {
    "all": (35.2, 73.6), "backtracking": (40.9, 76.9), "backtracking_verification": (41.9, 77.4),
    "backtracking_subgoal": (17.6, 71.6), "backtracking_backward": (31.0, 77.3),
    "incorrect": (28.3, 74.4), "empty": (6.1, 42.3), "dots": (11.1, 38.2),
    "none": (0.0, 35.4),  # no priming at all (Llama base + PPO); no negative-control row
}
SHORT = {"verification": "ver", "backtracking": "bt", "subgoal_setting": "sub",
         "backward_chaining": "bwd"}


def _seed_dirs(workdir: str) -> dict[int, str]:
    out = {}
    for path in glob.glob(os.path.join(workdir, "seed_*")):
        match = re.fullmatch(r"seed_(\d+)", os.path.basename(path))
        if match and os.path.isdir(path):
            out[int(match.group(1))] = path
    return dict(sorted(out.items()))


def _train_rewards(stage_dir: str) -> list[tuple[int, float]]:
    path = os.path.join(stage_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    by_step = {}
    with open(path) as f:
        for line in f:
            record = json.loads(line)
            if record.get("kind", "train") == "train" and "reward_mean" in record:
                by_step[int(record["step"])] = float(record["reward_mean"])
    return sorted(by_step.items())


def arm_run(seed_dir: str, arm: str) -> dict[str, Any] | None:
    """One arm of one seed: its evaluation points (step, accuracy, mean counts), start, best and
    final accuracy, and the training reward curve; None if the RL stage never evaluated."""
    stage = os.path.join(seed_dir, f"rl_{arm}")
    points = [p for p in behavior_curve(stage, "countdown") if not p["stage"]]
    if not points:
        return None
    start, final = points[0], points[-1]
    return {"points": points, "start_step": start["step"], "final_step": final["step"],
            "start_accuracy": start["accuracy"], "final_accuracy": final["accuracy"],
            "best_accuracy": max(p["accuracy"] for p in points),
            "start_counts": {k: start[k] for k in behaviors.KEYS},
            "final_counts": {k: final[k] for k in behaviors.KEYS},
            "finished": os.path.exists(os.path.join(stage, "summary.json")),
            "train_reward": _train_rewards(stage)}


def _mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, math.nan
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def collect(workdir: str) -> dict[str, Any]:
    """{arm: {seeds: {seed: arm_run}, priming: {seed: stats}, summary over seeds}}."""
    seeds = _seed_dirs(workdir)
    arms: dict[str, Any] = {}
    for seed, seed_dir in seeds.items():
        stats_path = os.path.join(seed_dir, "priming_sets.json")
        stats = {}
        if os.path.exists(stats_path):
            with open(stats_path) as f:
                stats = json.load(f)
        for path in sorted(glob.glob(os.path.join(seed_dir, "rl_*"))):
            arm = os.path.basename(path)[len("rl_"):]
            run = arm_run(seed_dir, arm)
            if run is None:
                continue
            entry = arms.setdefault(arm, {"seeds": {}, "priming": {}})
            entry["seeds"][seed] = run
            if arm in stats:
                entry["priming"][seed] = stats[arm]
    for entry in arms.values():
        runs = list(entry["seeds"].values())
        summary = {}
        for key in ("start_accuracy", "best_accuracy", "final_accuracy"):
            summary[key] = _mean_std([r[key] for r in runs])
        for when in ("start", "final"):
            for k in behaviors.KEYS:
                summary[f"{when}_{k}"] = _mean_std([r[f"{when}_counts"][k] for r in runs])
        entry["summary"] = summary
    order = [a for a in PAPER if a in arms] + sorted(a for a in arms if a not in PAPER)
    return {"seeds": list(seeds), "arms": {a: arms[a] for a in order}}


def _pct(pair: tuple[float, float]) -> str:
    mean, std = pair
    if math.isnan(mean):
        return "-"
    return f"{100 * mean:.1f}" + ("" if math.isnan(std) else f" ± {100 * std:.1f}")


def _num(pair: tuple[float, float]) -> str:
    mean, std = pair
    if math.isnan(mean):
        return "-"
    return f"{mean:.2f}" + ("" if math.isnan(std) else f"±{std:.2f}")


def markdown(result: dict[str, Any]) -> str:
    lines = ["| arm | seeds | RL steps | acc at start % | best acc % | final acc % | "
             "paper start % | paper best % |", "|---|---|---|---|---|---|---|---|"]
    for arm, entry in result["arms"].items():
        s, runs = entry["summary"], list(entry["seeds"].values())
        steps = ",".join(str(r["final_step"]) + ("" if r["finished"] else "*") for r in runs)
        paper = PAPER.get(arm, (math.nan, math.nan))
        lines.append(f"| {arm} | {','.join(map(str, entry['seeds']))} | {steps} | "
                     f"{_pct(s['start_accuracy'])} | {_pct(s['best_accuracy'])} | "
                     f"{_pct(s['final_accuracy'])} | {paper[0]} | {paper[1]} |")
    lines += ["", "Behavior counts per greedy held-out response (mean ± std over seeds), at the "
              "start of RL -> at its last evaluation; and in the arm's priming set:", "",
              "| arm | " + " | ".join(behaviors.KEYS) + " | priming set: "
              + " / ".join(SHORT[k] for k in behaviors.KEYS) + ", answers correct |",
              "|---|" + "---|" * (len(behaviors.KEYS) + 1)]
    for arm, entry in result["arms"].items():
        s = entry["summary"]
        cells = [f"{_num(s[f'start_{k}'])} -> {_num(s[f'final_{k}'])}" for k in behaviors.KEYS]
        primed = list(entry["priming"].values())
        prime = "-"
        if primed:
            p = primed[0]
            prime = (" / ".join(f"{p[k]:.2f}" for k in behaviors.KEYS)
                     + f", {100 * p['answer_accuracy']:.0f}%")
        lines.append(f"| {arm} | " + " | ".join(cells) + f" | {prime} |")
    lines += ["", "RL steps: the step of each seed's last evaluation (* = the RL stage had not "
              "finished). Paper: Llama-3.2-3B + PPO (ALGORITHMS.md 4.5); its `none` row is the "
              "unprimed base model."]
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], workdir: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = result["arms"]
    colors = {arm: plt.cm.tab10(i % 10) for i, arm in enumerate(arms)}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for arm, entry in arms.items():
        for k, run in enumerate(entry["seeds"].values()):
            ax.plot([p["step"] for p in run["points"]], [p["accuracy"] for p in run["points"]],
                    marker="o", color=colors[arm], alpha=0.8, label=arm if k == 0 else None,
                    linestyle="-" if k == 0 else "--")
    ax.set_xlabel("RL step")
    ax.set_ylabel("held-out accuracy (greedy)")
    ax.set_title("accuracy under RL per priming arm (one line per seed)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    accuracy_png = os.path.join(workdir, "priming_accuracy.png")
    fig.savefig(accuracy_png, dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
    for ax, key in zip(axes.flat, behaviors.KEYS):
        for arm, entry in arms.items():
            for k, run in enumerate(entry["seeds"].values()):
                ax.plot([p["step"] for p in run["points"]], [p[key] for p in run["points"]],
                        marker="o", color=colors[arm], label=arm if k == 0 else None,
                        linestyle="-" if k == 0 else "--", markersize=3)
        ax.set_title(key)
        ax.set_ylabel("mean count per response")
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("RL step")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("behavior counts of greedy held-out responses under RL")
    fig.tight_layout()
    behaviors_png = os.path.join(workdir, "priming_behaviors.png")
    fig.savefig(behaviors_png, dpi=120)
    plt.close(fig)
    return [accuracy_png, behaviors_png]


def write_report(workdir: str) -> dict[str, Any]:
    """Collect, write the JSON, the markdown table and the figures; returns the result."""
    result = collect(workdir)
    with open(os.path.join(workdir, "priming_report.json"), "w") as f:
        json.dump(result, f, indent=1, default=float)
    text = markdown(result)
    with open(os.path.join(workdir, "priming_report.md"), "w") as f:
        f.write(text)
    result["figures"] = plot(result, workdir) if result["arms"] else []
    print(text, flush=True)
    return result
