"""PPO end to end through the launcher on the toy letters task: it learns the one right answer,
logs the PPO metrics, exports actor and critic, and a run killed with SIGKILL resumes with the
same per-step metrics (the adaptive KL coefficient included) and the same actor and critic
parameters as one never killed."""

import os
import subprocess
import time

import numpy as np
import pytest

import grpo_runs

runs = grpo_runs.runs
CONFIG = grpo_runs.HERE / "tiny_ppo_config.py"


def command(workdir, *overrides):
    return runs.command(workdir, *overrides, config=CONFIG)


def run(workdir, *overrides, timeout=1800):  # generous: a loaded 2-core CI machine
    return subprocess.run(command(workdir, *overrides), env=grpo_runs.env(), capture_output=True,
                          text=True, timeout=timeout, cwd=runs.REPO)


def critic_params(workdir):
    from safetensors.numpy import load_file

    out = {}
    for file in sorted((workdir / "export_value").glob("*.safetensors")):
        out.update(load_file(str(file)))
    assert "score.weight" in out, f"no value head in {workdir / 'export_value'}"
    return out


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return grpo_runs.toy_data(tmp_path_factory.mktemp("toy"))


@pytest.mark.slow
def test_ppo_raises_reward_from_chance_to_near_one(tmp_path, toy):
    result = run(tmp_path, *toy)
    assert result.returncode == 0, result.stderr[-3000:]
    records = grpo_runs.train_records(tmp_path)
    rewards = np.array([records[s]["reward_mean"] for s in sorted(records)])
    assert len(rewards) == 80
    chance = 1 / 11  # one right token of the 11-token vocabulary
    assert rewards[:5].mean() < 3 * chance
    assert rewards[-10:].mean() > 0.9
    # The critic learns the returns: its loss falls. (Explained variance is no measure here:
    # once nearly every sample earns 1, the returns have almost no variance to explain.)
    late = records[70]
    assert late["value_loss"] < records[1]["value_loss"]


def test_sigkill_mid_run_resumes_actor_and_critic_exactly(tmp_path, toy):
    # with a KL penalty against the preset's step-0 policy, its coefficient steered by the
    # adaptive controller: the coefficient is train state and must resume exactly too
    steps = ["--config.train.num_steps=12", "--config.checkpoint.every=4",
             "--config.ppo.kl_coef=0.05", "--config.ppo.kl_controller=adaptive",
             "--config.ppo.kl_target=0.5", "--config.ppo.kl_horizon=200"]
    reference = tmp_path / "reference"
    result = run(reference, *toy, *steps)
    assert result.returncode == 0, result.stderr[-3000:]
    record = grpo_runs.train_records(reference)[6]
    for key in ("loss", "policy_loss", "value_loss", "explained_variance", "returns_mean",
                "values_old_mean", "kl", "kl_coef", "clip_fraction", "value_clip_fraction",
                "entropy", "reward_mean", "learning_rate", "logprob_gap_sampler"):
        assert key in record, key
    assert record["logprob_gap_sampler"] < 1e-4  # sampler and trainer agree on log-probs

    killed = tmp_path / "killed"
    process = subprocess.Popen(command(killed, *toy, *steps), env=grpo_runs.env(),
                               cwd=runs.REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.time() + 1800  # kill once a checkpoint is complete (saves are async)
    while not runs.checkpoint_steps(killed) and time.time() < deadline and process.poll() is None:
        time.sleep(0.005)
    process.send_signal(runs.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -runs.SIGKILL
    assert not (killed / "export").exists()
    result = run(killed, *toy, *steps)
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = [e for e in runs.events(killed) if e["event"] == "resumed"]
    assert resumed and 0 < resumed[-1]["step"] < 12
    runs.assert_resumed_without_repeating(killed, 12)

    runs.assert_same_params(runs.exported_params(killed), runs.exported_params(reference),
                            atol=1e-6)
    runs.assert_same_params(critic_params(killed), critic_params(reference), atol=1e-6)
    got, expected = grpo_runs.train_records(killed), grpo_runs.train_records(reference)
    assert sorted(got) == sorted(expected) == list(range(1, 13))
    for step in expected:  # same prompts and samples: same rewards, losses and values
        assert got[step]["reward_mean"] == expected[step]["reward_mean"], step
        for key in ("loss", "value_loss", "returns_mean", "values_old_mean", "kl", "kl_coef"):
            np.testing.assert_allclose(got[step][key], expected[step][key], atol=1e-6,
                                       err_msg=f"{key} at step {step}")
    assert os.path.isdir(killed / "export_value")
    coefs = [expected[s]["kl_coef"] for s in sorted(expected)]
    assert coefs[0] == pytest.approx(0.05) and len(set(coefs)) == len(coefs)  # it moved
