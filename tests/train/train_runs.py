"""Helpers for tests that run `launch/train.py` in subprocesses on a tiny model."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[2]
LAUNCHER = REPO / "launch" / "train.py"
TINY_CONFIG = pathlib.Path(__file__).resolve().parent / "tiny_sft_config.py"


def write_arithmetic_data(path: pathlib.Path, n: int = 160, seed: int = 0,
                          fields: tuple[str, str] = ("prompt", "completion")) -> pathlib.Path:
    rng = np.random.default_rng(seed)
    pairs = rng.choice(50 * 50, size=n, replace=False)  # distinct records, distinct ids
    with open(path, "w") as f:
        for a, b in zip(pairs // 50, pairs % 50):
            a, b = int(a), int(b)
            f.write(json.dumps({fields[0]: f"{a} + {b} =", fields[1]: f" {a + b}"}) + "\n")
    return path


def env(devices: int = 1) -> dict[str, str]:
    out = dict(os.environ)
    out["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    out["JAX_PLATFORMS"] = "cpu"
    out["TOKENIZERS_PARALLELISM"] = "false"
    return out


def command(workdir: pathlib.Path, *overrides: str, config: pathlib.Path = TINY_CONFIG
            ) -> list[str]:
    return [sys.executable, str(LAUNCHER), f"--config={config}", f"--workdir={workdir}",
            *overrides]


def run(workdir: pathlib.Path, *overrides: str, config: pathlib.Path = TINY_CONFIG,
        timeout: float = 300, devices: int = 1) -> subprocess.CompletedProcess:
    return subprocess.run(command(workdir, *overrides, config=config), env=env(devices),
                          capture_output=True, text=True, timeout=timeout, cwd=REPO)


def start(workdir: pathlib.Path, *overrides: str, devices: int = 1) -> subprocess.Popen:
    return subprocess.Popen(command(workdir, *overrides), env=env(devices), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def last_train_step(workdir: pathlib.Path) -> int:
    path = workdir / "metrics.jsonl"
    if not path.exists():
        return 0
    step = 0
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("kind") == "train":
            step = max(step, int(record["step"]))
    return step


def signal_after_step(process: subprocess.Popen, workdir: pathlib.Path, step: int,
                      signum: int, timeout: float = 240) -> int:
    """Send `signum` once the run has logged `step`; returns the step seen at that moment."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        seen = last_train_step(workdir)
        if seen >= step:
            process.send_signal(signum)
            return seen
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"run ended before step {step}:\n{err[-3000:]}")
        time.sleep(0.01)
    process.kill()
    raise AssertionError(f"run did not reach step {step} in {timeout}s")


def exported_params(workdir: pathlib.Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    out: dict[str, np.ndarray] = {}
    for file in sorted((workdir / "export").glob("*.safetensors")):
        out.update(load_file(str(file)))
    assert out, f"no exported safetensors in {workdir / 'export'}"
    return out


def data_order(workdir: pathlib.Path, process: int = 0) -> dict[int, list[int]]:
    """Example ids per step (the last record per step: a resumed run logs steps again)."""
    out: dict[int, list[int]] = {}
    path = workdir / f"data_order.p{process}.jsonl"
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        out[int(record["step"])] = record["example_ids"]
    return out


def train_metrics(workdir: pathlib.Path) -> dict[int, dict]:
    """The last train record of each step in metrics.jsonl."""
    out: dict[int, dict] = {}
    for line in (workdir / "metrics.jsonl").read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("kind") == "train":
            out[int(record["step"])] = record
    return out


def events(workdir: pathlib.Path) -> list[dict]:
    out = []
    for line in (workdir / "metrics.jsonl").read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("kind") == "event":
            out.append(record)
    return out


def steps_after_last_resume(workdir: pathlib.Path) -> tuple[int, list[int]]:
    """(checkpoint step of the last "resumed" event, train steps logged after it): what the
    resumed run executed, to check it did not run the steps before its checkpoint again."""
    resumed_at, steps = None, []
    for line in (workdir / "metrics.jsonl").read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("kind") == "event" and record.get("event") == "resumed":
            resumed_at, steps = int(record["step"]), []
        elif record.get("kind") == "train" and resumed_at is not None:
            steps.append(int(record["step"]))
    assert resumed_at is not None, "no resumed event in metrics.jsonl"
    return resumed_at, steps


def assert_resumed_without_repeating(workdir: pathlib.Path, last_step: int) -> None:
    """The resumed run executed exactly the steps after its checkpoint, each once."""
    resumed_at, steps = steps_after_last_resume(workdir)
    assert steps == list(range(resumed_at + 1, last_step + 1)), (resumed_at, steps)


def checkpoint_steps(workdir: pathlib.Path) -> list[int]:
    root = workdir / "checkpoints"
    if not root.exists():
        return []
    return sorted(int(p.name) for p in root.iterdir() if p.name.isdigit())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_same_params(a: dict[str, np.ndarray], b: dict[str, np.ndarray], atol: float) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], atol=atol, rtol=0, err_msg=name)


SIGKILL, SIGTERM = signal.SIGKILL, signal.SIGTERM
