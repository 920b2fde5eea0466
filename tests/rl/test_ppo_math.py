"""PPO's per-token arithmetic against NumPy re-derivations: GAE, KL-in-reward, the clipped
policy and value terms, whitening, explained variance, the loss's token mean, and the
per-part optimizer (actor / critic learning rates, warm-up delay)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import base
from jaxreason import advantages, losses_ppo
from jaxreason.train.optim import make_part_optimizer


def random_case(seed, batch=5, length=9):
    rng = np.random.RandomState(seed)
    rewards = rng.randn(batch, length).astype(np.float32)
    values = rng.randn(batch, length).astype(np.float32)
    mask = (rng.rand(batch, length) < 0.7).astype(np.float32)  # holes, like prompts / padding
    mask[0] = 0.0  # a row with no completion token
    mask[1] = 1.0
    return rewards, values, mask


def numpy_gae(rewards, values, mask, gamma, lam):
    """Textbook GAE over each row's masked positions taken as one episode."""
    adv = np.zeros_like(rewards, dtype=np.float64)
    for b in range(rewards.shape[0]):
        steps = np.flatnonzero(mask[b])
        r, v = rewards[b, steps].astype(np.float64), values[b, steps].astype(np.float64)
        next_values = np.append(v[1:], 0.0)
        deltas = r + gamma * next_values - v
        out, running = np.zeros(len(steps)), 0.0
        for t in reversed(range(len(steps))):
            running = deltas[t] + gamma * lam * running
            out[t] = running
        adv[b, steps] = out
    return adv, (adv + values) * mask


@pytest.mark.parametrize("gamma,lam", [(1.0, 1.0), (0.99, 0.95), (0.9, 0.0), (1.0, 0.5),
                                       (0.5, 1.0)])
def test_gae_equals_numpy(gamma, lam):
    for seed in range(3):
        rewards, values, mask = random_case(seed)
        got_adv, got_ret = advantages.gae(rewards, values, mask, gamma, lam)
        want_adv, want_ret = numpy_gae(rewards, values, mask, gamma, lam)
        np.testing.assert_allclose(np.asarray(got_adv), want_adv, atol=1e-5)
        np.testing.assert_allclose(np.asarray(got_ret), want_ret, atol=1e-5)
        assert np.all(np.asarray(got_adv)[mask == 0] == 0)


def test_returns_with_gamma_lambda_one_are_reward_to_go():
    rewards, values, mask = random_case(7)
    _, returns = advantages.gae(rewards, values, mask, 1.0, 1.0)
    masked = rewards * mask
    to_go = np.cumsum(masked[:, ::-1], axis=1)[:, ::-1] * mask
    np.testing.assert_allclose(np.asarray(returns), to_go, atol=1e-5)


def test_gae_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="one shape"):
        advantages.gae(np.zeros((2, 3)), np.zeros((2, 4)), np.zeros((2, 3)))


def test_kl_in_reward_puts_the_score_on_the_last_token_and_the_penalty_on_every_token():
    rng = np.random.RandomState(0)
    logp, ref = rng.randn(3, 8) - 2, rng.randn(3, 8) - 2
    mask = np.zeros((3, 8), np.float32)
    mask[0, 2:6] = 1  # completion at positions 2..5 (prompt before, padding after)
    mask[1, 1:8] = 1
    scores = np.array([1.0, 0.1, 5.0], np.float32)  # row 2 has no completion token
    for estimator, expected_kl in [
            ("kl", logp - ref), ("abs", np.abs(logp - ref)), ("mse", 0.5 * (logp - ref) ** 2),
            ("low_var_kl", np.clip(np.exp(ref - logp) - (ref - logp) - 1, -10, 10))]:
        kl = np.asarray(losses_ppo.kl_penalty(jnp.asarray(logp), jnp.asarray(ref), estimator))
        np.testing.assert_allclose(kl, expected_kl, rtol=1e-5, atol=1e-6)
        rewards = np.asarray(losses_ppo.token_rewards(jnp.asarray(scores), jnp.asarray(kl),
                                                      jnp.asarray(mask), 0.05))
        want = -0.05 * expected_kl * mask
        want[0, 5] += 1.0
        want[1, 7] += 0.1
        np.testing.assert_allclose(rewards, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError):
        losses_ppo.kl_penalty(jnp.zeros(2), jnp.zeros(2), "k9")


def test_policy_and_value_clip_terms_equal_numpy():
    rng = np.random.RandomState(1)
    logp, old = rng.randn(4, 6) * 0.3 - 1, rng.randn(4, 6) * 0.3 - 1
    adv = rng.randn(4, 6)
    loss, clipped, ratio = losses_ppo.clipped_policy_loss(
        jnp.asarray(logp), jnp.asarray(old), jnp.asarray(adv), epsilon_low=0.2,
        epsilon_high=0.28)
    r = np.exp(logp - old)
    want = np.maximum(-adv * r, -adv * np.clip(r, 0.8, 1.28))
    np.testing.assert_allclose(np.asarray(loss), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(clipped), -adv * np.clip(r, 0.8, 1.28) > -adv * r)
    assert 0 < np.asarray(clipped).mean() < 1

    values, old_values, returns = rng.randn(4, 6), rng.randn(4, 6), rng.randn(4, 6)
    vloss, vclipped = losses_ppo.clipped_value_loss(
        jnp.asarray(values), jnp.asarray(old_values), jnp.asarray(returns), clip=0.5)
    v_clip = old_values + np.clip(values - old_values, -0.5, 0.5)
    want = 0.5 * np.maximum((values - returns) ** 2, (v_clip - returns) ** 2)
    np.testing.assert_allclose(np.asarray(vloss), want, rtol=1e-5, atol=1e-6)
    assert 0 < np.asarray(vclipped).mean() < 1


def test_whitening_and_explained_variance_equal_numpy():
    rewards, values, mask = random_case(3)
    on = mask > 0
    white = np.asarray(losses_ppo.masked_whiten(jnp.asarray(rewards), jnp.asarray(mask)))
    x = rewards[on]
    np.testing.assert_allclose(white[on], (x - x.mean()) / np.sqrt(x.var(ddof=1) + 1e-8),
                               atol=1e-5)
    assert np.all(white[~on] == 0)
    ev = float(losses_ppo.explained_variance(jnp.asarray(rewards), jnp.asarray(values),
                                             jnp.asarray(mask)))
    np.testing.assert_allclose(ev, 1 - np.var(rewards[on] - values[on]) / np.var(rewards[on]),
                               rtol=1e-5)


def test_part_optimizer_equals_separate_adamw_per_part_with_the_actor_delayed():
    optim = base.get_config().optim
    optim.weight_decay = 0.1
    optim.schedule = "constant"
    rng = np.random.RandomState(0)
    params = {"policy": {"w": jnp.asarray(rng.randn(3, 4), jnp.float32),
                         "norm": jnp.ones(4)},
              "value": {"w": jnp.asarray(rng.randn(4), jnp.float32)}}
    grads = [jax.tree.map(lambda x, i=i: x * (i + 1.5) + 0.3, params) for i in range(5)]
    optimizer, schedules = make_part_optimizer(optim, 10, {"policy": (1e-2, 2),
                                                           "value": (3e-2, 0)})
    assert [float(schedules["policy"](i)) for i in range(4)] == pytest.approx([0, 0, 1e-2, 1e-2])
    state, ours = optimizer.init(params), params
    for g in grads:
        updates, state = optimizer.update(g, state, ours)
        ours = optax.apply_updates(ours, updates)

    def reference(part, rate):
        schedule = optax.constant_schedule(rate) if part == "value" else (
            lambda count: jnp.where(count < 2, 0.0, 1e-2))
        mask = jax.tree.map(lambda _: True, params[part])
        if part == "policy":
            mask["norm"] = False
        opt = optax.chain(optax.clip_by_global_norm(1.0),
                          optax.adamw(schedule, b1=optim.b1, b2=optim.b2, eps=optim.eps,
                                      weight_decay=0.1, mask=mask))
        p, s = params[part], None
        s = opt.init(p)
        for g in grads:
            u, s = opt.update(g[part], s, p)
            p = optax.apply_updates(p, u)
        return p

    for part, rate in (("policy", 1e-2), ("value", 3e-2)):
        for a, b in zip(jax.tree.leaves(ours[part]), jax.tree.leaves(reference(part, rate))):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kl,expected_error", [(9.0, 0.2), (6.6, 0.1), (3.0, -0.2), (6.0, 0.0)])
def test_adaptive_kl_coefficient_equals_the_ziegler_controller(kl, expected_error):
    """next = coef * (1 + clip(kl / target - 1, -0.2, 0.2) * completions / horizon)."""
    coef, target, horizon, completions = 0.05, 6.0, 1000.0, 64
    got = float(losses_ppo.adaptive_kl_coef(jnp.float32(coef), jnp.float32(kl), target=target,
                                            horizon=horizon, completions=completions))
    error = float(np.clip(kl / target - 1.0, -0.2, 0.2))
    assert error == pytest.approx(expected_error, abs=1e-6)
    assert got == pytest.approx(coef * (1.0 + error * completions / horizon), rel=1e-6)
