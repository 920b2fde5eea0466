"""Toy preference pairs and launcher runs of the tiny DPO recipe (one CPU device)."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "train"))

import train_runs as runs  # noqa: E402

CONFIG = HERE / "tiny_dpo_config.py"


def toy_pairs(n: int = 48) -> list[dict]:
    """Parity questions: the right word is chosen, the wrong one rejected."""
    out = []
    for i in range(n):
        right, wrong = ("even", "odd") if i % 2 == 0 else ("odd", "even")
        out.append({"prompt": f"Is {i} even or odd? Answer:", "chosen": f" {right}",
                    "rejected": f" {wrong}"})
    return out


def write_jsonl(path: pathlib.Path, records: list) -> pathlib.Path:
    with open(path, "w") as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return path


def run(workdir: pathlib.Path, *overrides: str, timeout: float = 300
        ) -> subprocess.CompletedProcess:
    return subprocess.run(runs.command(workdir, *overrides, config=CONFIG), env=runs.env(1),
                          capture_output=True, text=True, timeout=timeout, cwd=runs.REPO)


def train_metrics(workdir: pathlib.Path) -> dict[int, dict]:
    out = {}
    for line in (workdir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["kind"] == "train":
            out[record["step"]] = record
    return out
