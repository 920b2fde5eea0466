"""The train step gives the same update on one device, on a 2x2x2 mesh, and with gradient
accumulation (8 simulated CPU devices, see tests/conftest.py)."""

import functools

import jax
import numpy as np
import pytest

from jaxreason import losses, parallel
from jaxreason.model import preset_config
from jaxreason.train import state as train_state
from jaxreason.train.optim import learning_rate_schedule, make_optimizer
from jaxreason.train.step import accumulate_gradients, make_train_step

CONFIG = preset_config("llama-tiny", vocab_size=256)


class _Optim:  # the `config.optim` fields make_optimizer reads
    learning_rate, schedule, warmup_steps, final_lr_ratio = 1e-4, "constant", 0, 0.0
    weight_decay, b1, b2, eps, grad_clip = 0.01, 0.9, 0.95, 1e-8, 1.0


def _batch(rows=16, length=24, seed=0):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, CONFIG.vocab_size, (rows, length + 1))
    segment_ids = np.where(np.arange(length)[None] >= length - (np.arange(rows) % 5)[:, None],
                           0, 1).astype(np.int32)  # rows of different real lengths
    return {
        "input_ids": tokens[:, :-1].astype(np.int32),
        "targets": tokens[:, 1:].astype(np.int32),
        "positions": np.tile(np.arange(length), (rows, 1)).astype(np.int32),
        "segment_ids": segment_ids,
        "loss_mask": ((rng.random((rows, length)) > 0.3) & (segment_ids > 0)).astype(np.float32),
    }


def _one_step(mesh, batch, num_microbatches=1, averaging="token"):
    optimizer, schedule = make_optimizer(_Optim, total_steps=10)
    state = train_state.init_state(CONFIG, optimizer, mesh, seed=3)
    loss = functools.partial(losses.sft_loss, config=CONFIG, averaging=averaging, chunk_size=8)
    step = make_train_step(lambda p, b: loss(p, batch=b), optimizer, schedule, mesh=mesh,
                           state_shardings=train_state.state_shardings(CONFIG, optimizer, mesh),
                           num_microbatches=num_microbatches)
    state, metrics = step(state, parallel.host_local_to_global(batch, mesh))
    return (jax.tree.map(np.asarray, parallel.to_host(state.params)),
            jax.tree.map(np.asarray, parallel.to_host(state.opt_state)),
            {k: float(v) for k, v in metrics.items()}, state)


def _gradients(mesh, batch, num_microbatches=1, averaging="token"):
    """(gradient of the global mean loss, loss) at the initial parameters, as the step
    computes them: sums over micro-batches divided by the global normaliser."""
    optimizer, _ = make_optimizer(_Optim, total_steps=10)
    state = train_state.init_state(CONFIG, optimizer, mesh, seed=3)
    shardings = train_state.state_shardings(CONFIG, optimizer, mesh)
    loss = functools.partial(losses.sft_loss, config=CONFIG, averaging=averaging, chunk_size=8)

    def grads(params, batch):
        out, g = accumulate_gradients(lambda p, b: loss(p, batch=b), params, batch,
                                      num_microbatches, shardings.params)
        return jax.tree.map(lambda x: x / out.weight, g), out.total / out.weight

    with jax.set_mesh(mesh), parallel.logical_rules(parallel.DEFAULT_RULES):
        g, value = jax.jit(grads)(state.params, parallel.host_local_to_global(batch, mesh))
    return jax.tree.map(np.asarray, parallel.to_host(g)), float(value)


def _assert_gradients_equal(a, b):
    """Leaf by leaf within 1e-4 of the leaf's scale: a gradient off by any constant factor
    (a wrong normaliser) or missing a micro-batch fails."""
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        scale = np.abs(y).max()
        assert scale > 0
        np.testing.assert_allclose(x, y, atol=1e-4 * scale, rtol=0)


def _assert_trees_close(a, b, atol):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(x, y, atol=atol, rtol=0)


@pytest.fixture(scope="module")
def single_device():
    return _one_step(parallel.make_mesh(devices=jax.devices()[:1]), _batch())


def test_step_on_2x2x2_mesh_equals_single_device(single_device):
    mesh = parallel.make_mesh(data=2, fsdp=2, tensor=2)
    params, opt_state, metrics, state = _one_step(mesh, _batch())
    ref_params, ref_opt, ref_metrics, _ = single_device
    assert abs(metrics["loss"] - ref_metrics["loss"]) < 1e-5
    assert abs(metrics["grad_norm"] - ref_metrics["grad_norm"]) < 1e-5
    _assert_trees_close(params, ref_params, 1e-5)
    _assert_trees_close(opt_state, ref_opt, 1e-5)
    # The update really ran sharded: parameters stay on the mesh in their layout.
    q = state.params["layers"]["q"]
    assert len(q.sharding.device_set) == 8 and not q.sharding.is_fully_replicated


def test_gradient_accumulation_4x_equals_one_big_batch(single_device):
    mesh = parallel.make_mesh(data=2, fsdp=2, tensor=2)
    params, _, metrics, _ = _one_step(mesh, _batch(), num_microbatches=4)
    ref_params, _, ref_metrics, _ = single_device
    assert abs(metrics["loss"] - ref_metrics["loss"]) < 1e-5
    assert metrics["loss_tokens"] == ref_metrics["loss_tokens"]
    # Parameters after one Adam step are ~ lr * sign(g): blind to the gradient's scale. The
    # gradient norm and the gradients themselves are not.
    assert metrics["grad_norm"] == pytest.approx(ref_metrics["grad_norm"], rel=1e-5)
    _assert_trees_close(params, ref_params, 1e-5)
    whole, whole_loss = _gradients(parallel.make_mesh(devices=jax.devices()[:1]), _batch())
    accumulated, accumulated_loss = _gradients(mesh, _batch(), num_microbatches=4)
    assert accumulated_loss == pytest.approx(whole_loss, rel=1e-6)
    _assert_gradients_equal(accumulated, whole)


def test_sequence_averaging_is_also_exact_under_accumulation():
    mesh = parallel.make_mesh(devices=jax.devices()[:1])
    batch = _batch(rows=8)
    _, _, one, _ = _one_step(mesh, batch, averaging="sequence")
    _, _, four, _ = _one_step(mesh, batch, num_microbatches=4, averaging="sequence")
    assert abs(one["loss"] - four["loss"]) < 1e-6
    assert four["grad_norm"] == pytest.approx(one["grad_norm"], rel=1e-5)
    whole, _ = _gradients(mesh, batch, averaging="sequence")
    accumulated, _ = _gradients(mesh, batch, num_microbatches=4, averaging="sequence")
    _assert_gradients_equal(accumulated, whole)


def test_step_updates_parameters_and_counts_steps(single_device):
    params, _, metrics, state = single_device
    init = train_state.init_state(CONFIG, make_optimizer(_Optim, 10)[0],
                                  parallel.make_mesh(devices=jax.devices()[:1]), seed=3)
    moved = [np.abs(np.asarray(a) - b).max() for a, b in
             zip(jax.tree.leaves(init.params), jax.tree.leaves(params))]
    assert min(moved) > 0  # every parameter got an update
    assert int(state.step) == 1
    assert metrics["learning_rate"] == pytest.approx(1e-4)


def test_schedules_warm_up_then_decay_to_the_final_ratio():
    cosine = learning_rate_schedule(1.0, 100, schedule="cosine", warmup_steps=10,
                                    final_ratio=0.1)
    linear = learning_rate_schedule(1.0, 100, schedule="linear", warmup_steps=10,
                                    final_ratio=0.0)
    constant = learning_rate_schedule(1.0, 100, schedule="constant", warmup_steps=10)
    assert float(cosine(0)) == 0.0 and float(cosine(5)) == pytest.approx(0.5)
    assert float(cosine(10)) == pytest.approx(1.0)
    assert float(cosine(100)) == pytest.approx(0.1)
    assert float(linear(55)) == pytest.approx(0.5)
    assert float(constant(90)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="optim.schedule"):
        learning_rate_schedule(1.0, 10, schedule="step")


def test_weight_decay_skips_norms():
    from jaxreason.train.optim import decay_mask

    mask = decay_mask({"final_norm": 1, "layers": {"attn_norm": 1, "q": 1}, "embed": 1})
    assert mask == {"final_norm": False, "layers": {"attn_norm": False, "q": True}, "embed": True}
