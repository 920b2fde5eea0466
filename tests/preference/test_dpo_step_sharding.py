"""A DPO + NLL step on packed pair rows: 4 micro-batches and a 2x2x2 mesh give the update of
one big batch on one device (8 simulated CPU devices, see tests/conftest.py)."""

import functools

import jax
import numpy as np
import pytest

from jaxreason import losses, parallel
from jaxreason.data.rows import FirstFit, pair_positions, pair_rows
from jaxreason.model import preset_config
from jaxreason.train import state as train_state
from jaxreason.train.optim import make_optimizer
from jaxreason.train.step import make_train_step

CONFIG = preset_config("llama-tiny", vocab_size=256)


class _Optim:
    learning_rate, schedule, warmup_steps, final_lr_ratio = 1e-4, "constant", 0, 0.0
    weight_decay, b1, b2, eps, grad_clip = 0.0, 0.9, 0.95, 1e-8, 1.0


def _batch(rows=16, length=48, seed=0):
    """Random pairs of different lengths, first-fit packed (1-3 pairs per row), with random
    reference log-probs."""
    rng = np.random.default_rng(seed)

    def example(prompt, response):
        return {"tokens": rng.integers(3, CONFIG.vocab_size, prompt + response).astype(np.int32),
                "loss_weights": np.array([False] * prompt + [True] * response)}

    pairs, plan = [], FirstFit(rows, length)
    while True:
        p = int(rng.integers(3, 8))
        pair = {"chosen": example(p, int(rng.integers(2, 9))),
                "rejected": example(p, int(rng.integers(2, 9)))}
        if not plan.add(pair_positions(pair)):
            break
        pairs.append(pair)
    ref = rng.normal(-60, 5, (len(pairs), 2)).astype(np.float32)
    return pair_rows(pairs, rows, length, placements=plan.placements, ref_logps=ref), len(pairs)


def _one_step(mesh, batch, num_microbatches=1):
    optimizer, schedule = make_optimizer(_Optim, total_steps=10)
    state = train_state.init_state(CONFIG, optimizer, mesh, seed=3)
    loss = functools.partial(losses.dpo_nll_loss, config=CONFIG, beta=0.1, alpha=1.0,
                             chunk_size=16)
    step = make_train_step(lambda p, b: loss(p, batch=b), optimizer, schedule, mesh=mesh,
                           state_shardings=train_state.state_shardings(CONFIG, optimizer, mesh),
                           num_microbatches=num_microbatches)
    state, metrics = step(state, parallel.host_local_to_global(batch, mesh))
    return (jax.tree.map(np.asarray, parallel.to_host(state.params)),
            {k: float(v) for k, v in metrics.items()})


@pytest.fixture(scope="module")
def reference():
    batch, num_pairs = _batch()
    return batch, num_pairs, _one_step(parallel.make_mesh(devices=jax.devices()[:1]), batch)


def _close(a, b, atol):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(x, y, atol=atol, rtol=0)


def test_loss_is_a_mean_over_the_pairs_of_the_batch(reference):
    batch, num_pairs, (_, metrics) = reference
    assert metrics["loss_weight"] == num_pairs > 16  # packed: more pairs than rows
    assert 0 < metrics["reward_accuracy"] < 1


@pytest.mark.parametrize("mesh_shape,micro", [((2, 2, 2), 4), ((1, 1, 1), 4)])
def test_mesh_and_accumulation_equal_one_big_batch(reference, mesh_shape, micro):
    batch, _, (ref_params, ref_metrics) = reference
    devices = jax.devices()[:int(np.prod(mesh_shape))]
    mesh = parallel.make_mesh(*mesh_shape, devices=devices)
    params, metrics = _one_step(mesh, batch, num_microbatches=micro)
    for key in ("loss", "grad_norm", "reward_margin", "chosen_logp", "nll", "loss_weight"):
        assert metrics[key] == pytest.approx(ref_metrics[key], abs=1e-4, rel=1e-5), key
    _close(params, ref_params, 1e-5)
