"""The ASTRO-vs-Direct table of an `astro_countdown_tiny` (or any ASTRO pipeline) work dir.

    python launch/astro_report.py /tmp/astro_tiny [--json out.json]

Reads `search/summary.json` (tree figures), `clone/summary.json` (records per arm) and every
model stage's `eval/step_*/items.jsonl` (greedy held-out completions): accuracy, backtracks
per answer (the fixed "Let's go back to where we ..." / "Let's restart ..." sentences, and
the `jaxreason.behaviors` backtracking count), mean completion tokens; and per GRPO stage
the Pearson correlation between backtracks per answer and accuracy across its checkpoints
(the SFT model it starts from, `sft_<arm>` for `grpo_<arm>`, counts as step 0).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jaxreason import behaviors  # noqa: E402

_HEAD = behaviors.ASTRO_BACKTRACK.split("{step}")[0]
_BACK = re.compile(re.escape(_HEAD) + "|" + re.escape(behaviors.ASTRO_RESTART))


def phrase_backtracks(text: str) -> int:
    return len(_BACK.findall(text))


def stage_points(stage_dir: str) -> list[dict]:
    points = []
    for path in glob.glob(os.path.join(stage_dir, "eval", "step_*", "items.jsonl")):
        step = int(re.search(r"step_(\d+)", path).group(1))
        with open(path) as f:
            greedy = [json.loads(line)["greedy"] for line in f if line.strip()]
        greedy = [g for g in greedy if g]
        if not greedy:
            continue
        texts = [g["completion"] for g in greedy]
        counts = behaviors.count_many(texts, "countdown")
        points.append({
            "step": step, "n": len(greedy),
            "accuracy": sum(bool(g["correct"]) for g in greedy) / len(greedy),
            "backtracks_per_answer": sum(map(phrase_backtracks, texts)) / len(texts),
            "behavior_backtracking": sum(c["backtracking"] for c in counts) / len(counts),
            "reflections_per_answer": sum(t.count(behaviors.ASTRO_REFLECTION)
                                          for t in texts) / len(texts),
            "mean_tokens": sum(g.get("tokens", 0) for g in greedy) / len(greedy)})
    return sorted(points, key=lambda p: p["step"])


def _read(path: str) -> dict:
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def report(workdir: str) -> dict:
    out: dict = {"workdir": workdir, "search": {}, "clone": {}, "stages": {}}
    s = _read(os.path.join(workdir, "search", "summary.json"))
    out["search"] = {k: s.get(k) for k in ("num_trees", "valid_tree_rate", "mean_nodes",
                                            "q_pairs", "q_correct_path", "q_siblings",
                                            "q_path_above_sibling_share", "timing_s")}
    c = _read(os.path.join(workdir, "clone", "summary.json"))
    out["clone"] = {k: c.get(k) for k in ("records_per_arm", "mean_k", "mean_backtracks",
                                           "skipped_no_correct")}
    pipeline = _read(os.path.join(workdir, "pipeline.json")).get("stages", {})
    for name, info in pipeline.items():
        if info.get("trainer") not in ("sft", "grpo"):
            continue
        points = stage_points(info.get("dir") or os.path.join(workdir, name))
        start = out["stages"].get(name.replace("grpo_", "sft_", 1), {}).get("final")
        if info.get("trainer") == "grpo" and start and not any(p["step"] == 0 for p in points):
            points = [{**start, "step": 0}] + points  # the SFT model GRPO starts from
        entry = {"trainer": info.get("trainer"), "points": points}
        if points:
            entry["final"] = points[-1]
        if len(points) >= 3:
            entry["pearson_backtracks_accuracy"] = behaviors.pearson(
                [p["backtracks_per_answer"] for p in points], [p["accuracy"] for p in points])
        out["stages"][name] = entry
    return out


def markdown(rep: dict) -> str:
    lines = ["| stage | held-out accuracy | backtracks / answer | behaviors backtracking / "
             "answer | reflections / answer | mean tokens |", "|---|---|---|---|---|---|"]
    for name, entry in rep["stages"].items():
        f = entry.get("final")
        if not f:
            continue
        lines.append(f"| {name} (step {f['step']}) | {f['accuracy']:.3f} ({f['n']}) | "
                     f"{f['backtracks_per_answer']:.2f} | {f['behavior_backtracking']:.2f} | "
                     f"{f['reflections_per_answer']:.2f} | {f['mean_tokens']:.1f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("workdir")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rep = report(args.workdir)
    print(json.dumps({"search": rep["search"], "clone": rep["clone"]}, indent=1))
    print(markdown(rep))
    for name, entry in rep["stages"].items():
        if entry["trainer"] == "grpo":
            curve = ", ".join(f"{p['step']}: acc {p['accuracy']:.3f} bt {p['backtracks_per_answer']:.2f}"
                              for p in entry["points"])
            print(f"{name}: {curve}; pearson {entry.get('pearson_backtracks_accuracy')}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rep, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
