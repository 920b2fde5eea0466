"""The GRPO loss against a straightforward NumPy re-derivation, for every variant, and the
direction of its gradient."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxreason import losses
from jaxreason.model import create_model, preset_config

ROWS, LENGTH, VOCAB = 6, 12, 40


@pytest.fixture(scope="module")
def model():
    return create_model(preset_config("llama-tiny", vocab_size=VOCAB, hidden_size=32,
                                      intermediate_size=64, num_layers=1), seed=0)


def make_batch(seed=0, per_token_advantages=False):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, VOCAB, (ROWS, LENGTH + 1))
    lengths = rng.integers(6, LENGTH + 1, ROWS)  # real positions per row
    prompt = rng.integers(2, 5, ROWS)  # positions before the completion starts
    positions = np.tile(np.arange(LENGTH), (ROWS, 1))
    real = positions < lengths[:, None]
    loss_mask = real & (positions >= prompt[:, None])
    loss_mask[-1] = False  # a filler row: no tokens count
    batch = {
        "input_ids": tokens[:, :-1], "targets": tokens[:, 1:], "positions": positions,
        "segment_ids": real.astype(np.int32), "loss_mask": loss_mask.astype(np.int32),
        "advantages": rng.normal(size=(ROWS, LENGTH) if per_token_advantages else ROWS),
    }
    return {k: jnp.asarray(v) for k, v in batch.items()}


def numpy_logprobs(model, batch):
    logits = np.asarray(model(batch["input_ids"], attention_mask=batch["segment_ids"],
                              positions=batch["positions"]), np.float64)
    logits -= logits.max(-1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return np.take_along_axis(logp, np.asarray(batch["targets"])[..., None], -1)[..., 0]


def numpy_grpo(logp, old, ref, adv, mask, *, eps_low, eps_high, beta, normalizer, constant):
    adv = adv if adv.ndim == 2 else adv[:, None] * np.ones_like(logp)
    ratio = np.exp(logp - old)
    surrogate = np.minimum(ratio * adv, np.clip(ratio, 1 - eps_low, 1 + eps_high) * adv)
    kl = np.exp(ref - logp) - (ref - logp) - 1
    per_token = (-(surrogate - beta * kl)) * mask
    rows = mask.any(1)
    if normalizer == "token":
        return per_token.sum() / mask.sum()
    if normalizer == "sequence":
        return (per_token[rows].sum(1) / mask[rows].sum(1)).mean()
    return per_token.sum() / (rows.sum() * constant)


VARIANTS = [
    dict(eps_low=0.2, eps_high=0.2, beta=0.0, normalizer="token"),  # DAPO-style mean, no KL
    dict(eps_low=0.2, eps_high=0.28, beta=0.0, normalizer="token"),  # clip-higher
    dict(eps_low=0.2, eps_high=0.2, beta=0.04, normalizer="sequence"),  # DeepSeekMath GRPO
    dict(eps_low=0.1, eps_high=0.3, beta=0.1, normalizer="constant"),  # Dr. GRPO normalizer
]


@pytest.mark.parametrize("per_token", [False, True], ids=["seq_adv", "token_adv"])
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"{v['normalizer']}-b{v['beta']}-"
                         f"e{v['eps_high']}")
def test_loss_equals_numpy_rederivation(model, variant, per_token):
    batch = make_batch(per_token_advantages=per_token)
    logp = numpy_logprobs(model, batch)
    rng = np.random.default_rng(1)
    old = logp + rng.normal(scale=0.3, size=logp.shape)  # ratios well outside the clip range
    ref = logp + rng.normal(scale=0.5, size=logp.shape)
    batch = dict(batch, old_logprobs=jnp.asarray(old, jnp.float32),
                 ref_logprobs=jnp.asarray(ref, jnp.float32))
    out = losses.get_loss("grpo")(model.params, model.config, batch,
                                  epsilon_low=variant["eps_low"], epsilon_high=variant["eps_high"],
                                  beta=variant["beta"], normalizer=variant["normalizer"],
                                  constant_normalizer=16.0, chunk_size=5)
    loss, metrics = losses.mean_loss(out)
    mask = np.asarray(batch["loss_mask"], bool)
    expected = numpy_grpo(logp, old, ref, np.asarray(batch["advantages"]), mask,
                          eps_low=variant["eps_low"], eps_high=variant["eps_high"],
                          beta=variant["beta"], normalizer=variant["normalizer"], constant=16.0)
    np.testing.assert_allclose(float(loss), expected, rtol=2e-5, atol=1e-6)
    # Clipped tokens: those where the clipped branch of the min is the active one, i.e. the
    # ratio is past 1 + eps_high with a positive advantage or below 1 - eps_low with a negative.
    ratio = np.exp(logp - old)
    adv = np.asarray(batch["advantages"])
    adv = adv if adv.ndim == 2 else adv[:, None] * np.ones_like(logp)
    clipped = ((ratio > 1 + variant["eps_high"]) & (adv > 0)) | ((ratio < 1 - variant["eps_low"]) & (adv < 0))
    expected_fraction = clipped[mask].sum() / mask.sum()
    assert 0.05 < expected_fraction < 0.95  # both kinds of token are present
    assert float(metrics["clip_fraction"]) == pytest.approx(expected_fraction, abs=1e-6)


def test_without_old_logprobs_the_ratio_is_one_and_kl_to_itself_is_zero(model):
    batch = make_batch()
    logp = numpy_logprobs(model, batch)
    batch = dict(batch, ref_logprobs=jnp.asarray(logp, jnp.float32))
    out = losses.get_loss("grpo")(model.params, model.config, batch, beta=0.5)
    loss, metrics = losses.mean_loss(out)
    mask = np.asarray(batch["loss_mask"], bool)
    adv = np.asarray(batch["advantages"])[:, None] * np.ones_like(logp)
    np.testing.assert_allclose(float(loss), -(adv * mask).sum() / mask.sum(), rtol=1e-5)
    assert abs(float(metrics["kl"])) < 1e-6
    assert float(metrics["clip_fraction"]) == 0.0
    np.testing.assert_allclose(float(metrics["ratio"]), 1.0, rtol=1e-6)


def test_gradient_raises_positive_and_lowers_negative_advantage_tokens(model):
    batch = make_batch(seed=3)
    adv = np.where(np.arange(ROWS) % 2 == 0, 1.0, -1.0)
    batch = dict(batch, advantages=jnp.asarray(adv, jnp.float32))
    loss_fn = functools.partial(losses.get_loss("grpo"), config=model.config)
    grads = jax.grad(lambda p: loss_fn(p, batch=batch).total)(model.params)
    before = numpy_logprobs(model, batch)
    stepped = jax.tree.map(lambda p, g: p - 0.05 * g, model.params, grads)
    after = numpy_logprobs(type(model)(model.config, stepped), batch)
    mask = np.asarray(batch["loss_mask"], bool)
    delta = (after - before) * mask
    assert delta[adv > 0].sum() > 0
    assert delta[adv < 0].sum() < 0


def test_unknown_normalizer_is_named(model):
    with pytest.raises(ValueError, match="normalizer must be one of"):
        losses.get_loss("grpo")(model.params, model.config, make_batch(), normalizer="mean")
