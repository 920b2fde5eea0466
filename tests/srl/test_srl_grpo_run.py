"""A tiny SRL run end to end: the GRPO trainer with the SRL task on Countdown step instances
completes, logs the format rate, the mean reward of well-formed completions and the std
filter's drops per step, and evaluates the validation step instances."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "train"))

import train_runs as runs  # noqa: E402


def test_tiny_srl_grpo_run_completes(tmp_path):
    from jaxreason.data.synthetic import generate

    train, val = generate("countdown_srl", {"num_train": 12, "num_eval": 4, "k_start": 1,
                                            "val_fraction": 0.25}, 0)
    for name, records in (("steps", train), ("val", val)):
        with open(tmp_path / f"{name}.jsonl", "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)
    workdir = tmp_path / "run"
    result = subprocess.run(
        runs.command(workdir, f"--config.data.train={tmp_path / 'steps.jsonl'}",
                     f"--config.eval.data={tmp_path / 'val.jsonl'}",
                     config=HERE / "tiny_srl_config.py"),
        env=runs.env(devices=1), capture_output=True, text=True, timeout=600, cwd=runs.REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
    train_lines = [x for x in lines if x["kind"] == "train"]
    assert [x["step"] for x in train_lines][-1] == 2
    for x in train_lines:
        assert 0.0 <= x["format_ok_fraction"] <= 1.0
        assert 0.0 <= x["groups_filtered_fraction"] <= 1.0
        assert -1.0 <= x["reward_mean"] <= 1.0
        assert 0.0 <= x["reward_mean_format_ok"] <= 1.0
        # an untrained model writes no think block: every reward is -1, every group filtered
        if x["format_ok_fraction"] == 0.0:
            assert x["reward_mean"] == -1.0 and x["groups_filtered_fraction"] == 1.0
    evals = [x for x in lines if x["kind"] == "eval"]
    assert evals and all(-1.0 <= x["mean_reward"] <= 1.0 for x in evals)
    assert evals[-1]["num_examples"] == len(val)
