"""One GRPO step (old log-probs, reference KL, 2 passes x 2 minibatches) on a 2x2x2 mesh of 8
simulated devices equals the single-device step."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxreason import losses, parallel
from jaxreason.model import preset_config
from jaxreason.algorithms.grpo import logprob_pre_step
from jaxreason.train.step import make_train_step
from jaxreason.train.state import init_state, state_shardings
from test_grpo_loss import make_batch

pytestmark = pytest.mark.skipif(len(jax.devices()) < 8, reason="needs 8 (simulated) devices")


def one_step(mesh, config, batch):
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-3))
    schedule = optax.constant_schedule(1e-3)
    state = init_state(config, optimizer, mesh, seed=0)
    ref = jax.tree.map(lambda x: x * 0.9, state.params)  # a reference different from the policy
    loss = functools.partial(losses.get_loss("grpo"), config=config, beta=0.05,
                             epsilon_high=0.28, chunk_size=4)
    pre_step = logprob_pre_step(config, old=True, ref=True)
    update = make_train_step(lambda p, b: loss(p, batch=b), optimizer, schedule, mesh=mesh,
                             state_shardings=state_shardings(config, optimizer, mesh),
                             pre_step=pre_step, frozen=ref, num_iterations=2, num_minibatches=2)
    global_batch = parallel.host_local_to_global({k: np.asarray(v) for k, v in batch.items()},
                                                 mesh)
    state, metrics = update(state, global_batch)
    return jax.tree.map(np.asarray, state.params), {k: float(v) for k, v in metrics.items()}, state


def test_grpo_step_on_2x2x2_mesh_equals_one_device():
    config = preset_config("llama-tiny", vocab_size=40, hidden_size=32, intermediate_size=64,
                           num_layers=2)
    batch = make_batch(seed=5)
    batch = {k: jnp.concatenate([v, v[::-1]]) for k, v in batch.items()}  # 12 rows -> 4 shards
    batch = {k: v[:8] for k, v in batch.items()}
    single = parallel.make_mesh(1, 1, 1, devices=jax.devices()[:1])
    params1, metrics1, state1 = one_step(single, config, batch)
    params8, metrics8, state8 = one_step(parallel.make_mesh(2, 2, 2), config, batch)
    assert int(state1.step) == int(state8.step) == 1  # one GRPO step, four optimizer updates
    for key in ("loss", "grad_norm", "clip_fraction", "kl", "entropy"):
        np.testing.assert_allclose(metrics8[key], metrics1[key], rtol=1e-5, atol=1e-6, err_msg=key)
    assert metrics1["kl"] > 0 and metrics1["clip_fraction"] > 0
    for a, b in zip(jax.tree.leaves(params8), jax.tree.leaves(params1)):
        np.testing.assert_allclose(a, b, atol=1e-5)
    spec = state8.params["layers"]["gate"].sharding.spec
    assert spec == jax.sharding.PartitionSpec(None, "fsdp", "tensor")


def test_microbatched_pre_step_equals_one_forward_over_all_rows():
    """The pre-step's forwards split into micro-batches (rows j, j+n, ...) and put back in
    row order give the one-forward log-probs, on the 2x2x2 mesh."""
    config = preset_config("llama-tiny", vocab_size=40, hidden_size=32, intermediate_size=64,
                           num_layers=2)
    batch = make_batch(seed=5)
    batch = {k: jnp.concatenate([v, v[::-1]])[:8] for k, v in batch.items()}
    mesh = parallel.make_mesh(2, 2, 2)
    optimizer = optax.adamw(1e-3)
    state = init_state(config, optimizer, mesh, seed=0)
    ref = jax.tree.map(lambda x: x * 0.9, state.params)
    global_batch = parallel.host_local_to_global({k: np.asarray(v) for k, v in batch.items()},
                                                 mesh)
    fields = {}
    for n in (1, 2, 4):
        pre = jax.jit(logprob_pre_step(config, old=True, ref=True, num_microbatches=n))
        with jax.set_mesh(mesh), parallel.logical_rules(parallel.DEFAULT_RULES):
            fields[n] = jax.tree.map(np.asarray, pre(state.params, ref, global_batch))
    assert set(fields[1]) == {"old_logprobs", "ref_logprobs"}
    assert not np.allclose(fields[1]["old_logprobs"], fields[1]["ref_logprobs"])
    for n in (2, 4):
        for key in fields[1]:
            np.testing.assert_allclose(fields[n][key], fields[1][key], atol=1e-5, err_msg=key)
