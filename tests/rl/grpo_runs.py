"""Running the toy GRPO recipe through the launcher (reuses tests/train/train_runs.py)."""

from __future__ import annotations

import json
import os
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "train"))

import train_runs as runs  # noqa: E402
import toy_letters  # noqa: E402

CONFIG = HERE / "tiny_grpo_config.py"


def toy_data(directory: pathlib.Path) -> list[str]:
    """Launcher overrides that point the toy recipe at freshly written data and tokenizer."""
    data, tokenizer = toy_letters.write_data(directory)
    return [f"--config.data.train={data}", f"--config.tokenizer.path={tokenizer}"]


def env() -> dict[str, str]:
    out = runs.env(devices=1)
    out["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), out.get("PYTHONPATH")]))
    return out


def run(workdir: pathlib.Path, *overrides: str, timeout: float = 300):
    import subprocess

    return subprocess.run(runs.command(workdir, *overrides, config=CONFIG), env=env(),
                          capture_output=True, text=True, timeout=timeout, cwd=runs.REPO)


def start(workdir: pathlib.Path, *overrides: str):
    import subprocess

    return subprocess.Popen(runs.command(workdir, *overrides, config=CONFIG), env=env(),
                            cwd=runs.REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def train_records(workdir: pathlib.Path) -> dict[int, dict]:
    """The last train record of each step (a resumed run logs its first steps again)."""
    out = {}
    for line in (workdir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["kind"] == "train":
            out[record["step"]] = record
    return out
