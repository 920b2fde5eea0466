"""Grading throughput: completions graded per second per task, in one process vs the pool.

    python bench/grading.py [--n 2000] [--workers N]

Completions are half correct and half wrong, built from the real data in ../shared/data when it
is there (gold solutions vs other problems' solutions; Countdown solver answers vs perturbed
ones; ARC reference answers vs other letters; SRL expert steps vs edited ones, after a think
block, for Countdown steps and ~500-character steps), else from synthetic records. "single" is
`task.grade` in a loop in this process (MATH still sends pairs that need symbolic algebra to
one worker, as `task.grade` always does); "pool" is `grade_batch` over a started pool of
`--workers` processes. The last line printed is one JSON object with all figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jaxreason.tasks import GradingPool, generate_instances, get, grade_batch, solve  # noqa: E402
from jaxreason.data.readers import read_records  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _sample(records: list[dict], n: int, rng: random.Random) -> list[dict]:
    return [records[rng.randrange(len(records))] for _ in range(n)]


def _math_items(n: int, rng: random.Random) -> tuple[list[dict], list[str], str]:
    path = DATA / "math" / "train.jsonl"
    if path.exists():
        records, source = _sample(read_records(path), n, rng), "MATH train"
    else:
        records = [{"problem": "p", "solution": f"so \\boxed{{\\frac{{{i}}}{{{i + 1}}}}}"} for i in range(n)]
        source = "synthetic"
    completions = [
        r["solution"] if i % 2 == 0 else records[(i + 1) % len(records)]["solution"]
        for i, r in enumerate(records)
    ]
    return records, completions, source


def _gsm8k_items(n: int, rng: random.Random) -> tuple[list[dict], list[str], str]:
    path = DATA / "gsm8k" / "train.jsonl"
    if path.exists():
        records, source = _sample(read_records(path), n, rng), "GSM8K train"
    else:
        records = [{"question": "q", "answer": f"work\n#### {i}"} for i in range(n)]
        source = "synthetic"
    completions = [
        r["answer"] if i % 2 == 0 else records[(i + 1) % len(records)]["answer"]
        for i, r in enumerate(records)
    ]
    return records, completions, source


def _countdown_items(n: int, rng: random.Random) -> tuple[list[dict], list[str], str]:
    path = DATA / "countdown" / "train.parquet"
    if path.exists():
        records, source = _sample(read_records(path), n, rng), "TinyZero train.parquet"
    else:
        records, source = generate_instances(n, seed=0, num_numbers=(3, 4)), "generated"
    completions = []
    for i, record in enumerate(records):
        solution = solve(record["nums"], record["target"])
        expression = solution.expression if solution else "1 + 1"
        if i % 2:
            expression = expression.replace("+", "-", 1) if "+" in expression else expression + " + 1"
        steps = solution.steps_text if solution else ""
        completions.append(f"<think>\n{steps}\n</think>\n<answer> {expression} </answer>")
    return records, completions, source


def _arc_items(n: int, rng: random.Random) -> tuple[list[dict], list[str], str]:
    path = DATA / "arc" / "ARC-Challenge-Train.jsonl"
    task = get("arc")
    if path.exists():
        records, source = _sample(read_records(path), n, rng), "ARC-Challenge train"
    else:
        choices = [{"text": t, "label": l} for t, l in zip(("red", "blue", "green", "gray"), "ABCD")]
        records = [
            {"id": str(i), "question": {"stem": "s", "choices": choices}, "answerKey": "ABCD"[i % 4]}
            for i in range(n)
        ]
        source = "synthetic"
    completions = []
    for i, record in enumerate(records):
        gold = task.gold_answer(record)
        label = gold if i % 2 == 0 else ("B" if gold == "A" else "A")
        completions.append(f"Let me think about each option.\nThe answer is ({label}).")
    return records, completions, source


def _srl_items(n: int, rng: random.Random, long_steps: bool = False) -> tuple[list[dict], list[str], str]:
    """SRL step instances: Countdown solver steps (short), or ~500-character prose steps (the
    length of a math solution step; difflib's autojunk is active above 200); half the actions
    are the expert step, half an edited one, all after a think block."""
    from jaxreason.data.srl_steps import countdown_trajectory, step_instances

    records = []
    for record in generate_instances(max(1, n // 2), seed=0, num_numbers=(3, 4)):
        records += step_instances(countdown_trajectory(record), k_start=1)
    if long_steps:
        words = "we substitute the value into the equation so that both sides agree and".split()
        for record in records:
            record["target_step"] = " ".join(rng.choice(words) for _ in range(90))
    records = _sample(records, n, rng)
    completions = []
    for i, record in enumerate(records):
        action = record["target_step"]
        if i % 2:
            cut = rng.randrange(len(action))
            action = action[:cut] + "7" + action[cut + 1:]
        completions.append(f"<think>\nwhich pair next? {' '.join(record['previous_steps'])}\n</think>\n{action}")
    return records, completions, "Countdown solver steps" if not long_steps else "~500-char steps"


BUILDERS = {"math": _math_items, "gsm8k": _gsm8k_items, "countdown": _countdown_items, "arc": _arc_items}
BUILDERS["srl"] = _srl_items  # step similarity (SRL), short Countdown steps and long steps
BUILDERS["srl_long"] = lambda n, rng: _srl_items(n, rng, long_steps=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="completions per task")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="pool processes")
    args = parser.parse_args()

    figures: dict[str, float | int | str] = {"n": args.n, "workers": args.workers}
    rows = []
    with GradingPool(args.workers) as pool:
        pool.map(abs, [(-1,)] * (2 * args.workers))  # start the workers outside the timings
        for name, build in BUILDERS.items():
            task = get(name.split("_")[0])
            records, completions, source = build(args.n, random.Random(0))
            task.grade(records[0], completions[1])  # start the symbolic worker (MATH)
            start = time.perf_counter()
            single = [task.grade(r, c) for r, c in zip(records, completions)]
            single_s = time.perf_counter() - start
            start = time.perf_counter()
            pooled = grade_batch(task, records, completions, item_timeout_s=10.0, pool=pool)
            pool_s = time.perf_counter() - start
            agree = sum(a.correct == b.correct for a, b in zip(single, pooled))
            accuracy = sum(g.correct for g in pooled) / len(pooled)
            figures[f"{name}_single_per_s"] = round(len(records) / single_s, 1)
            figures[f"{name}_pool_per_s"] = round(len(records) / pool_s, 1)
            rows.append((name, source, len(records), len(records) / single_s, len(records) / pool_s, accuracy, agree))

    print(f"grading throughput, {args.workers} pool workers, {os.cpu_count()} CPUs")
    print(f"{'task':<10} {'data':<24} {'n':>6} {'single/s':>10} {'pool/s':>10} {'correct':>8} {'agree':>6}")
    for name, source, count, single_rate, pool_rate, accuracy, agree in rows:
        print(f"{name:<10} {source:<24} {count:>6} {single_rate:>10.1f} {pool_rate:>10.1f} {accuracy:>8.1%} {agree:>6}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
