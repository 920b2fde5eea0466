"""One PPO step (pre-step: old / reference log-probs, values, KL-in-reward, GAE; 2 epochs x 2
minibatches of actor + critic updates): the loss equals a NumPy re-derivation from the model's
own log-probs and values, and a 2x2x2 mesh of 8 simulated devices equals one device."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import base
from jaxreason import losses, parallel
from jaxreason.algorithms.ppo import ACTOR_CRITIC, ppo_pre_step
from jaxreason.model import preset_config, value_head
from jaxreason.train.optim import make_part_optimizer
from jaxreason.train.state import init_state, state_shardings
from jaxreason.train.step import make_train_step
from test_grpo_loss import make_batch

pytestmark = pytest.mark.skipif(len(jax.devices()) < 8, reason="needs 8 (simulated) devices")

CONFIG = preset_config("llama-tiny", vocab_size=40, hidden_size=32, intermediate_size=64,
                       num_layers=2)
OPTIONS = dict(epsilon_low=0.2, epsilon_high=0.28, value_clip=0.005, value_coef=0.7,
               entropy_coef=0.01)


def ppo_batch():
    batch = make_batch(seed=5)
    batch = {k: jnp.concatenate([v, v[::-1]])[:8] for k, v in batch.items()}
    batch.pop("advantages")
    batch["rewards"] = jnp.asarray(np.random.RandomState(0).rand(8), jnp.float32)
    batch["actor_update"] = jnp.ones(8, jnp.float32)
    return batch


def build(mesh):
    optim = base.get_config().optim
    optimizer, schedules = make_part_optimizer(optim, 8, {"policy": (1e-3, 0),
                                                          "value": (1e-3, 0)})
    state = init_state(CONFIG, optimizer, mesh, seed=0, tree=ACTOR_CRITIC)
    # a critic that is not a copy of the actor, and a reference that is not the actor
    state.params["value"]["head"]["kernel"] = state.params["value"]["head"]["kernel"] + 0.3
    ref = jax.tree.map(lambda x: x * 0.9, state.params["policy"])
    ref = jax.device_put(ref, state_shardings(CONFIG, optimizer, mesh, ACTOR_CRITIC)
                         .params["policy"])
    return optimizer, schedules["policy"], state, ref


def one_step(mesh, batch):
    optimizer, schedule, state, ref = build(mesh)
    loss = functools.partial(losses.get_loss("ppo"), config=CONFIG, chunk_size=4, **OPTIONS)
    pre = ppo_pre_step(CONFIG, old=True, kl_coef=0.05, kl_estimator="kl", gamma=0.99, lam=0.95,
                       whiten=True, chunk_size=4)
    update = make_train_step(lambda p, b: loss(p, batch=b), optimizer, schedule, mesh=mesh,
                             state_shardings=state_shardings(CONFIG, optimizer, mesh,
                                                             ACTOR_CRITIC),
                             pre_step=pre, frozen=ref, num_iterations=2, num_minibatches=2)
    global_batch = parallel.host_local_to_global({k: np.asarray(v) for k, v in batch.items()},
                                                 mesh)
    state, metrics = update(state, global_batch)
    return jax.tree.map(np.asarray, state.params), {k: float(v) for k, v in metrics.items()}


def test_ppo_step_on_2x2x2_mesh_equals_one_device():
    batch = ppo_batch()
    params1, metrics1 = one_step(parallel.make_mesh(1, 1, 1, devices=jax.devices()[:1]), batch)
    params8, metrics8 = one_step(parallel.make_mesh(2, 2, 2), batch)
    for key in ("loss", "grad_norm", "policy_loss", "value_loss", "clip_fraction",
                "value_clip_fraction", "entropy", "kl", "explained_variance", "returns_mean"):
        np.testing.assert_allclose(metrics8[key], metrics1[key], rtol=1e-5, atol=1e-6,
                                   err_msg=key)
    assert metrics1["kl"] != 0 and metrics1["clip_fraction"] > 0
    assert metrics1["value_clip_fraction"] > 0
    for a, b in zip(jax.tree.leaves(params8), jax.tree.leaves(params1)):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_first_update_loss_equals_numpy_from_the_models_own_logprobs_and_values():
    """Pre-step fields and the first minibatch's loss, re-derived in NumPy."""
    mesh = parallel.make_mesh(1, 1, 1, devices=jax.devices()[:1])
    _, _, state, ref = build(mesh)
    batch = ppo_batch()
    params = state.params
    with jax.set_mesh(mesh):
        pre = ppo_pre_step(CONFIG, old=True, kl_coef=0.05, kl_estimator="kl", gamma=0.99,
                           lam=0.95, whiten=False, chunk_size=4)(params, ref, batch)
        full = {**batch, **{k: v for k, v in pre.items() if k != "metrics"}}
        out = losses.get_loss("ppo")(params, CONFIG, full, chunk_size=4, **OPTIONS)
        logp = np.asarray(losses.batch_token_logprobs(params["policy"], CONFIG, batch), np.float64)
        ref_logp = np.asarray(losses.batch_token_logprobs(ref, CONFIG, batch), np.float64)
        values = np.asarray(value_head.batch_values(params["value"], CONFIG, batch), np.float64)
    mask = np.asarray(batch["loss_mask"], np.float64)
    values = values * mask
    rewards = -0.05 * (logp - ref_logp) * mask
    for row in range(8):
        on = np.flatnonzero(mask[row])
        if len(on):
            rewards[row, on[-1]] += float(batch["rewards"][row])
    # GAE, textbook, over each row's completion tokens
    adv = np.zeros_like(rewards)
    for row in range(8):
        on = np.flatnonzero(mask[row])
        running, next_value = 0.0, 0.0
        for t in reversed(on):
            running = rewards[row, t] + 0.99 * next_value - values[row, t] + 0.99 * 0.95 * running
            adv[row, t], next_value = running, values[row, t]
    returns = (adv + values) * mask
    np.testing.assert_allclose(np.asarray(pre["advantages"]), adv, atol=1e-5)
    np.testing.assert_allclose(np.asarray(pre["returns"]), returns, atol=1e-5)
    # first update: ratio 1, values = old values -> policy term -A, value term 0.5 (V - R)^2
    entropy_free = -adv + 0.7 * 0.5 * (values - returns) ** 2
    _, metrics = losses.mean_loss(out)
    tokens = mask.sum()
    np.testing.assert_allclose(float(metrics["policy_loss"]), (-adv * mask).sum() / tokens,
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(float(metrics["value_loss"]),
                               (0.5 * (values - returns) ** 2 * mask).sum() / tokens, rtol=1e-4)
    want = (entropy_free * mask).sum() / tokens - 0.01 * float(metrics["entropy"])
    np.testing.assert_allclose(float(out.total / out.weight), want, rtol=1e-4, atol=1e-6)
    assert float(metrics["clip_fraction"]) == 0.0


def test_critic_warmup_updates_only_the_critic():
    """During warm-up (actor rate 0 for the first updates, actor_update = 0) the actor stays
    exactly where it was, the critic moves; Adam's actor moments stay 0."""
    mesh = parallel.make_mesh(1, 1, 1, devices=jax.devices()[:1])
    optim = base.get_config().optim
    optimizer, schedules = make_part_optimizer(optim, 8, {"policy": (1e-3, 4),
                                                          "value": (1e-2, 0)})
    state = init_state(CONFIG, optimizer, mesh, seed=0, tree=ACTOR_CRITIC)
    before = jax.tree.map(np.asarray, state.params)
    loss = functools.partial(losses.get_loss("ppo"), config=CONFIG, chunk_size=4, **OPTIONS)
    pre = ppo_pre_step(CONFIG, old=True, kl_coef=0.0, kl_estimator="kl", gamma=1.0, lam=1.0,
                       whiten=True, chunk_size=4)
    update = make_train_step(lambda p, b: loss(p, batch=b), optimizer, schedules["policy"],
                             mesh=mesh, state_shardings=state_shardings(CONFIG, optimizer, mesh,
                                                                        ACTOR_CRITIC),
                             pre_step=pre, num_iterations=2, num_minibatches=2)
    batch = ppo_batch()
    batch["actor_update"] = jnp.zeros(8, jnp.float32)
    state, metrics = update(state, parallel.host_local_to_global(
        {k: np.asarray(v) for k, v in batch.items()}, mesh))
    after = jax.tree.map(np.asarray, state.params)
    for a, b in zip(jax.tree.leaves(after["policy"]), jax.tree.leaves(before["policy"])):
        np.testing.assert_array_equal(a, b)
    moved = [np.abs(a - b).max() for a, b in zip(jax.tree.leaves(after["value"]),
                                                 jax.tree.leaves(before["value"]))]
    assert max(moved) > 0
    assert metrics["learning_rate"] == 0.0
    adam = state.opt_state[1]
    assert all(np.all(np.asarray(m) == 0) for m in jax.tree.leaves(adam.mu["policy"]))


def test_adaptive_kl_coefficient_lives_in_the_state_and_steers_the_next_step():
    """With the adaptive controller the coefficient is state (`TrainState.extra`, replicated
    on the 2x2x2 mesh): step 1 uses the start value and leaves the controller's update of it
    from step 1's KL; step 2's per-token rewards use that value."""
    from jaxreason.algorithms.ppo import KL_COEF, adaptive_actor_critic
    from jaxreason.losses_ppo import adaptive_kl_coef

    mesh = parallel.make_mesh(2, 2, 2)
    tree = adaptive_actor_critic(0.05)
    optim = base.get_config().optim
    optimizer, schedules = make_part_optimizer(optim, 8, {"policy": (1e-3, 0),
                                                          "value": (1e-3, 0)})
    shardings = state_shardings(CONFIG, optimizer, mesh, tree)
    state = init_state(CONFIG, optimizer, mesh, seed=0, tree=tree)
    ref = jax.device_put(jax.tree.map(lambda x: x * 0.9, state.params["policy"]),
                         shardings.params["policy"])
    assert float(state.extra[KL_COEF]) == pytest.approx(0.05)
    loss = functools.partial(losses.get_loss("ppo"), config=CONFIG, chunk_size=4, **OPTIONS)
    pre = ppo_pre_step(CONFIG, old=True, kl_coef=0.05, kl_estimator="kl", gamma=1.0, lam=1.0,
                       whiten=True, chunk_size=4, adaptive_kl=(0.001, 20.0, 8))
    update = make_train_step(lambda p, b: loss(p, batch=b), optimizer, schedules["policy"],
                             mesh=mesh, state_shardings=shardings, pre_step=pre, frozen=ref)
    batch = parallel.host_local_to_global({k: np.asarray(v) for k, v in ppo_batch().items()},
                                          mesh)
    state, first = update(state, batch)
    want = float(adaptive_kl_coef(jnp.float32(0.05), jnp.float32(first["kl"]), target=0.001,
                                  horizon=20.0, completions=8))
    assert first["kl_coef"] == pytest.approx(0.05)
    assert float(first["kl"]) > 0.001  # above target: the coefficient grows by 8%
    assert float(state.extra[KL_COEF]) == pytest.approx(want, rel=1e-6)
    assert want == pytest.approx(0.05 * 1.08, rel=1e-6)
    state, second = update(state, batch)
    assert float(second["kl_coef"]) == pytest.approx(want, rel=1e-6)
    want2 = float(adaptive_kl_coef(jnp.float32(want), jnp.float32(second["kl"]), target=0.001,
                                   horizon=20.0, completions=8))
    assert float(state.extra[KL_COEF]) == pytest.approx(want2, rel=1e-6)


def test_sampler_old_logprobs_replace_the_policy_forward():
    """`ppo.old_logprobs = "sampler"`: the pre-step takes pi_old from the batch's sampler
    log-probs; given the model's own log-probs there, every field equals the recompute mode's."""
    mesh = parallel.make_mesh(1, 1, 1, devices=jax.devices()[:1])
    _, _, state, ref = build(mesh)
    batch = ppo_batch()
    options = dict(old=True, kl_coef=0.05, kl_estimator="kl", gamma=0.99, lam=0.95, whiten=True,
                   chunk_size=4)
    with jax.set_mesh(mesh):
        own = losses.batch_token_logprobs(state.params["policy"], CONFIG, batch, chunk_size=4)
        recomputed = ppo_pre_step(CONFIG, **options)(state.params, ref, batch)
        from_sampler = ppo_pre_step(CONFIG, **options, sampler_old_logprobs=True)(
            state.params, ref, {**batch, "sampler_logprobs": own + 0.25})
        same = ppo_pre_step(CONFIG, **options, sampler_old_logprobs=True)(
            state.params, ref, {**batch, "sampler_logprobs": own})
    mask = np.asarray(batch["loss_mask"], np.float32)
    np.testing.assert_allclose(np.asarray(from_sampler["old_logprobs"]),
                               (np.asarray(own) + 0.25) * mask, atol=1e-6)
    for key in ("old_logprobs", "advantages", "returns", "old_values"):  # on completion tokens
        np.testing.assert_allclose(np.asarray(same[key]) * mask,
                                   np.asarray(recomputed[key]) * mask, atol=1e-5, err_msg=key)
    # the KL term sees the sampler's log-probs: shifted by 0.25 per completion token
    tokens_per_row = mask.sum(1)
    want = float(recomputed["metrics"]["kl"]) + 0.25 * tokens_per_row.sum() / (tokens_per_row > 0).sum()
    assert float(from_sampler["metrics"]["kl"]) == pytest.approx(want, rel=1e-4)
