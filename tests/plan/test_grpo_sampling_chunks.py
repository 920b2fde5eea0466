"""GRPO with `sampling.max_kv_cache_bytes`: the rollouts are sampled in sequential chunks and
the run is the unchunked run (same rewards, losses and parameters at every step). Slow: two
short launcher runs."""

import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "rl"))

import grpo_runs  # noqa: E402
import train_runs  # noqa: E402

# The toy recipe's caches: a slot is 1 layer x 1 kv head x 16 x float32, keys and values, +
# the valid mask = 129 bytes; a prompt's 8 samples share its 4 prompt slots and hold 1 new
# slot each: (4 + 8) x 129 = 1,548 bytes per prompt; 2 prompts per call -> 4 calls.
BUDGET = 1548 * 2


@pytest.mark.slow
def test_chunked_rollouts_train_exactly_like_unchunked(tmp_path):
    data = grpo_runs.toy_data(tmp_path)
    common = [*data, "--config.train.num_steps=3", "--config.checkpoint.every=3",
              "--config.eval.num_examples=0"]
    whole = grpo_runs.run(tmp_path / "whole", *common)
    assert whole.returncode == 0, whole.stderr[-2000:]
    chunked = grpo_runs.run(tmp_path / "chunked", *common,
                            f"--config.sampling.max_kv_cache_bytes={BUDGET}")
    assert chunked.returncode == 0, chunked.stderr[-2000:]
    # the rollout program: 8 prompts per call unchunked, 2 with the budget (one shape)
    assert "8 prompts x 8 samples" in whole.stderr
    assert "2 prompts x 8 samples" in chunked.stderr
    assert "8 prompts x 8 samples" not in chunked.stderr
    a = train_runs.train_metrics(tmp_path / "whole")
    b = train_runs.train_metrics(tmp_path / "chunked")
    assert sorted(a) == sorted(b) == [1, 2, 3]
    for step in a:
        for key in ("reward_mean", "reward_std", "response_length_mean", "loss", "grad_norm"):
            assert a[step][key] == b[step][key], (step, key)
    pa = train_runs.exported_params(tmp_path / "whole")
    pb = train_runs.exported_params(tmp_path / "chunked")
    for name in pa:
        np.testing.assert_array_equal(pa[name], pb[name], err_msg=name)
