"""The DPO family (dpo, dpo_nll, ipo, orpo) against NumPy re-derivations, closed forms and
gradient properties; pair rows keep both sides of a pair in one row."""

import numpy as np
import pytest

import jax
import jax.numpy as jnp

from jaxreason import losses
from jaxreason.data.rows import pair_rows


def _np_log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def _random_sums(seed, shape=(3, 5)):
    rng = np.random.default_rng(seed)
    ct = rng.integers(1, 30, shape).astype(np.float32)
    rt = rng.integers(1, 30, shape).astype(np.float32)
    cl = -ct * rng.uniform(0.05, 3.0, shape).astype(np.float32)
    rl = -rt * rng.uniform(0.05, 3.0, shape).astype(np.float32)
    valid = (rng.random(shape) > 0.2).astype(np.float32)
    s = losses.PairSums(
        chosen_logp=jnp.asarray(cl), rejected_logp=jnp.asarray(rl),
        chosen_tokens=jnp.asarray(ct), rejected_tokens=jnp.asarray(rt),
        chosen_prompt_tokens=jnp.asarray(rng.integers(3, 20, shape).astype(np.float32)),
        ref_chosen_logp=jnp.asarray(cl + rng.normal(0, 2, shape).astype(np.float32)),
        ref_rejected_logp=jnp.asarray(rl + rng.normal(0, 2, shape).astype(np.float32)),
        valid=jnp.asarray(valid))
    return s, {k: np.asarray(v, np.float64) for k, v in s._asdict().items()}


def _numpy_loss(kind, n, *, beta=0.1, eps=0.0, alpha=1.0, nll_on_prompt=False, lam=0.1):
    dw = n["chosen_logp"] - n["ref_chosen_logp"]
    dl = n["rejected_logp"] - n["ref_rejected_logp"]
    h = beta * (dw - dl)
    if kind in ("dpo", "dpo_nll"):
        loss = -(1 - eps) * _np_log_sigmoid(h) - eps * _np_log_sigmoid(-h)
        if kind == "dpo_nll":
            den = n["chosen_tokens"] + (n["chosen_prompt_tokens"] if nll_on_prompt else 0)
            loss = loss - alpha * n["chosen_logp"] / den
    elif kind == "ipo":
        loss = (dw - dl - 1 / (2 * beta)) ** 2
    else:
        pw = np.exp(n["chosen_logp"] / n["chosen_tokens"])  # length-normalized likelihoods
        pl = np.exp(n["rejected_logp"] / n["rejected_tokens"])
        log_odds = np.log(pw / (1 - pw)) - np.log(pl / (1 - pl))
        loss = -np.log(pw) + lam * -_np_log_sigmoid(log_odds)
    return np.where(n["valid"] > 0, loss, 0.0)


@pytest.mark.parametrize("kind,options", [
    ("dpo", {}), ("dpo", {"label_smoothing": 0.2, "beta": 0.3}),
    ("dpo_nll", {"alpha": 1.0}), ("dpo_nll", {"alpha": 0.5, "nll_on_prompt": True}),
    ("ipo", {"beta": 0.5}), ("orpo", {"orpo_lambda": 0.25})])
def test_each_loss_equals_a_numpy_rederivation(kind, options):
    for seed in range(3):
        s, n = _random_sums(seed)
        got, _ = losses.pair_losses(kind, s, **options)
        want = _numpy_loss(kind, n, beta=options.get("beta", 0.1),
                           eps=options.get("label_smoothing", 0.0),
                           alpha=options.get("alpha", 1.0),
                           nll_on_prompt=options.get("nll_on_prompt", False),
                           lam=options.get("orpo_lambda", 0.1))
        np.testing.assert_allclose(np.asarray(got), want, rtol=2e-5, atol=2e-5)


def test_dpo_at_the_reference_is_log_2():
    s, _ = _random_sums(0)
    s = s._replace(ref_chosen_logp=s.chosen_logp, ref_rejected_logp=s.rejected_logp,
                   valid=jnp.ones_like(s.valid))
    for beta in (0.1, 1.0, 5.0):
        loss, _ = losses.pair_losses("dpo", s, beta=beta)
        np.testing.assert_allclose(np.asarray(loss), np.log(2.0), rtol=1e-6)
    # alpha = 0 is exactly DPO
    a, _ = losses.pair_losses("dpo_nll", s, alpha=0.0)
    b, _ = losses.pair_losses("dpo", s)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_rpo_nll_is_length_normalized_on_hand_numbers():
    # chosen: 4 response tokens summing to -2 (mean -0.5), prompt 6 tokens; theta = ref
    one = lambda x: jnp.asarray([[x]], jnp.float32)  # noqa: E731
    s = losses.PairSums(one(-2.0), one(-9.0), one(4.0), one(3.0), one(6.0), one(-2.0),
                        one(-9.0), one(1.0))
    loss, _ = losses.pair_losses("dpo_nll", s, alpha=1.0)
    assert float(loss[0, 0]) == pytest.approx(np.log(2) + 0.5, rel=1e-6)
    loss, _ = losses.pair_losses("dpo_nll", s, alpha=1.0, nll_on_prompt=True)
    assert float(loss[0, 0]) == pytest.approx(np.log(2) + 2.0 / 10.0, rel=1e-6)


def test_orpo_odds_use_length_normalized_likelihoods():
    # P(y_w) = exp(-2 / 4) and P(y_l) = exp(-3 / 2): the per-token means, not the sums
    one = lambda x: jnp.asarray([[x]], jnp.float32)  # noqa: E731
    s = losses.PairSums(one(-2.0), one(-3.0), one(4.0), one(2.0), one(5.0), one(0.0), one(0.0),
                        one(1.0))
    _, metrics = losses.pair_losses("orpo", s, orpo_lambda=1.0)
    pw, pl = np.exp(-0.5), np.exp(-1.5)
    want = np.log(pw / (1 - pw)) - np.log(pl / (1 - pl))
    assert float(metrics["log_odds_ratio"][0, 0]) == pytest.approx(want, rel=1e-5)
    # the odds of the unnormalized sums would differ
    sums = np.log(np.exp(-2) / (1 - np.exp(-2))) - np.log(np.exp(-3) / (1 - np.exp(-3)))
    assert abs(sums - want) > 0.1


def _toy_rows():
    """Two pairs packed in row 0, one in row 1: per-token log-probs are the test's input."""
    def example(prompt, response):
        tokens = np.arange(prompt + response, dtype=np.int32) % 7 + 1
        weights = np.array([False] * prompt + [True] * response)
        return {"tokens": tokens, "loss_weights": weights}
    pairs = [{"chosen": example(3, 4), "rejected": example(3, 2)},
             {"chosen": example(2, 3), "rejected": example(2, 5)},
             {"chosen": example(4, 2), "rejected": example(4, 3)}]
    placements = [(0, 0, 1), (0, 10, 2), (1, 0, 1)]
    ref = np.array([[-1.0, -2.0], [-3.0, -4.0], [-5.0, -6.0]], np.float32)
    return pairs, pair_rows(pairs, 2, 24, placements=placements, ref_logps=ref), ref


def test_pair_rows_and_pair_sums_recover_each_side():
    pairs, batch, ref = _toy_rows()
    assert list(batch["segment_ids"][0, :20]) == [1] * 6 + [2] * 4 + [3] * 4 + [4] * 6
    logp = jnp.asarray(np.random.default_rng(0).normal(size=(2, 24)), jnp.float32)
    s = losses.pair_sums(logp, {k: jnp.asarray(v) for k, v in batch.items()})
    mask = batch["loss_mask"]
    seg = batch["segment_ids"]
    for i, (row, k) in enumerate([(0, 1), (0, 2), (1, 1)]):
        for side, seg_id in ((0, 2 * k - 1), (1, 2 * k)):
            sel = (seg[row] == seg_id) & (mask[row] > 0)
            got = (s.chosen_logp, s.rejected_logp)[side][row, k - 1]
            assert float(got) == pytest.approx(float(np.asarray(logp)[row][sel].sum()), abs=1e-5)
            assert float((s.ref_chosen_logp, s.ref_rejected_logp)[side][row, k - 1]) == ref[i, side]
        p = len(pairs[i]["chosen"]["tokens"]) - int(pairs[i]["chosen"]["loss_weights"].sum())
        assert float(s.chosen_prompt_tokens[row, k - 1]) == p
    assert np.asarray(s.valid).sum() == 3


def test_nll_gradient_is_zero_on_rejected_tokens():
    _, batch, _ = _toy_rows()
    batch = {k: jnp.asarray(v) for k, v in batch.items()}
    logp = jnp.asarray(np.random.default_rng(1).normal(-1, 0.3, size=(2, 24)), jnp.float32)

    def nll_term(token_logp):  # dpo_nll minus dpo = the NLL term alone
        s = losses.pair_sums(token_logp, batch)
        return (jnp.sum(losses.pair_losses("dpo_nll", s, alpha=1.0)[0])
                - jnp.sum(losses.pair_losses("dpo", s)[0]))

    grad = np.asarray(jax.grad(nll_term)(logp))
    seg, mask = np.asarray(batch["segment_ids"]), np.asarray(batch["loss_mask"])
    rejected = (seg > 0) & (seg % 2 == 0)
    chosen = (seg % 2 == 1) & (mask > 0)
    assert np.all(grad[rejected] == 0.0)
    assert np.all(grad[chosen] < 0)  # raising a chosen token's log-prob lowers the loss
    # and -1 / |y_w| per chosen token
    np.testing.assert_allclose(grad[0][(seg[0] == 1) & (mask[0] > 0)], -1 / 4, rtol=1e-6)
    # the DPO term itself does push rejected tokens down
    dpo_grad = np.asarray(jax.grad(lambda t: jnp.sum(losses.pair_losses(
        "dpo", losses.pair_sums(t, batch))[0]))(logp))
    assert np.all(dpo_grad[rejected & (mask > 0)] > 0)
