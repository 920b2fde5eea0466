"""GRPO end to end through the launcher: learning, metrics, and exact resume after SIGKILL."""

import time

import numpy as np
import pytest

import grpo_runs


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return grpo_runs.toy_data(tmp_path_factory.mktemp("toy"))


@pytest.fixture(scope="module")
def learned(tmp_path_factory, toy):
    workdir = tmp_path_factory.mktemp("learned")
    result = grpo_runs.run(workdir, *toy)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


def test_grpo_raises_reward_from_chance_to_near_one(learned):
    records = grpo_runs.train_records(learned)
    rewards = np.array([records[s]["reward_mean"] for s in sorted(records)])
    assert len(rewards) == 80
    chance = 1 / 11  # one right token of the 11-token vocabulary
    assert rewards[:5].mean() < 3 * chance
    assert rewards[-10:].mean() > 0.9


def test_grpo_logs_the_rl_metrics(learned):
    record = grpo_runs.train_records(learned)[10]
    for key in ("loss", "grad_norm", "reward_mean", "reward_std", "clip_fraction", "kl",
                "entropy", "response_length_mean", "response_length_max",
                "groups_filtered_fraction", "sample_time", "grade_time", "logprob_gap_sampler",
                "learning_rate"):
        assert key in record, key
    assert record["logprob_gap_sampler"] < 1e-4  # sampler and trainer agree on log-probs


def test_sigkill_mid_run_resumes_with_same_data_rng_and_parameters(tmp_path, toy, learned):
    runs = grpo_runs.runs
    steps = "--config.train.num_steps=30"
    reference = tmp_path / "reference"
    result = grpo_runs.run(reference, *toy, steps)
    assert result.returncode == 0, result.stderr[-3000:]

    killed = tmp_path / "killed"
    process = grpo_runs.start(killed, *toy, steps)
    deadline = time.time() + 240  # kill once a checkpoint is complete (saves are async)
    while not runs.checkpoint_steps(killed) and time.time() < deadline and process.poll() is None:
        time.sleep(0.005)
    process.send_signal(runs.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -runs.SIGKILL
    assert not (killed / "export").exists()
    result = grpo_runs.run(killed, *toy, steps)
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = [e for e in runs.events(killed) if e["event"] == "resumed"]
    assert resumed and 0 < resumed[-1]["step"] < 30
    runs.assert_resumed_without_repeating(killed, 30)

    runs.assert_same_params(runs.exported_params(killed), runs.exported_params(reference),
                            atol=1e-6)
    got, expected = grpo_runs.train_records(killed), grpo_runs.train_records(reference)
    assert sorted(got) == sorted(expected) == list(range(1, 31))
    for step in expected:  # same prompts and samples: same rewards and losses at every step
        assert got[step]["reward_mean"] == expected[step]["reward_mean"], step
        np.testing.assert_allclose(got[step]["loss"], expected[step]["loss"], atol=1e-6)
