"""Chunked token log-probs and the SFT loss, against direct computations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxreason import losses
from jaxreason.model import llama, preset_config

CONFIG = preset_config("llama-tiny", vocab_size=384)


def _params(seed=0):
    return llama.init_params(CONFIG, jax.random.key(seed), std=0.2)


def _batch(rows=3, length=23, seed=0):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, CONFIG.vocab_size, (rows, length + 1))
    return {
        "input_ids": tokens[:, :-1].astype(np.int32),
        "targets": tokens[:, 1:].astype(np.int32),
        "positions": np.tile(np.arange(length), (rows, 1)).astype(np.int32),
        "segment_ids": np.ones((rows, length), np.int32),
        "loss_mask": (rng.random((rows, length)) > 0.4).astype(np.float32),
    }


def _direct_logprobs(params, batch):
    logits, _ = llama.forward(params, CONFIG, batch["input_ids"], batch["positions"])
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    return jnp.take_along_axis(logp, batch["targets"][..., None], axis=-1)[..., 0]


@pytest.mark.parametrize("chunk_size", [1, 5, 8, 23, 64])
def test_chunked_logprobs_equal_full_log_softmax_for_any_chunk_size(chunk_size):
    params, batch = _params(), _batch()
    chunked = losses.batch_token_logprobs(params, CONFIG, batch, chunk_size=chunk_size)
    np.testing.assert_allclose(chunked, _direct_logprobs(params, batch), atol=2e-5, rtol=1e-5)


def test_chunked_logprob_gradients_equal_unchunked_gradients():
    params, batch = _params(), _batch()

    def direct(p):
        return jnp.sum(_direct_logprobs(p, batch) * batch["loss_mask"])

    def chunked(p):
        return jnp.sum(losses.batch_token_logprobs(p, CONFIG, batch, chunk_size=6)
                       * batch["loss_mask"])

    g_direct, g_chunked = jax.grad(direct)(params), jax.grad(chunked)(params)
    for a, b in zip(jax.tree.leaves(g_direct), jax.tree.leaves(g_chunked)):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4)


def _largest_vocab_intermediate(jaxpr, vocab):
    """Largest element count of any intermediate with a vocab-sized last dim (all sub-jaxprs)."""
    biggest = 0
    for eqn in jaxpr.eqns:
        for var in eqn.outvars:
            shape = getattr(var.aval, "shape", ())
            if shape and shape[-1] == vocab and len(shape) >= 2:
                biggest = max(biggest, int(np.prod(shape)))
        for sub in _sub_jaxprs(eqn.params.values()):
            biggest = max(biggest, _largest_vocab_intermediate(sub, vocab))
    return biggest


def _sub_jaxprs(values):
    for value in values:
        if hasattr(value, "jaxpr") and hasattr(value, "consts"):  # ClosedJaxpr
            yield value.jaxpr
        elif hasattr(value, "eqns"):  # Jaxpr
            yield value
        elif isinstance(value, (tuple, list)):
            yield from _sub_jaxprs(value)


def test_loss_and_gradient_never_hold_full_batch_logits():
    params, batch = _params(), _batch(rows=2, length=64)
    chunk = 16

    def loss(p):
        return losses.sft_loss(p, CONFIG, batch, chunk_size=chunk).total

    jaxpr = jax.make_jaxpr(jax.value_and_grad(loss))(params).jaxpr
    biggest = _largest_vocab_intermediate(jaxpr, CONFIG.vocab_size)
    assert biggest == 2 * chunk * CONFIG.vocab_size  # one chunk's logits, never [2, 64, vocab]
    # The check itself can fail: the unchunked loss does hold [batch, length, vocab].
    full = jax.make_jaxpr(jax.grad(lambda p: jnp.sum(_direct_logprobs(p, batch))))(params).jaxpr
    assert _largest_vocab_intermediate(full, CONFIG.vocab_size) == 2 * 64 * CONFIG.vocab_size


def test_sft_loss_token_averaging_is_masked_mean_nll():
    params, batch = _params(), _batch()
    out = losses.sft_loss(params, CONFIG, batch, averaging="token", chunk_size=7)
    logp = np.asarray(_direct_logprobs(params, batch))
    mask = batch["loss_mask"]
    expected = -(logp * mask).sum() / mask.sum()
    loss, metrics = losses.mean_loss(out)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    np.testing.assert_allclose(out.weight, mask.sum())
    np.testing.assert_allclose(metrics["nll_per_token"], expected, rtol=1e-5)


def test_sft_loss_sequence_averaging_weighs_each_example_equally():
    params, batch = _params(), _batch(rows=4)
    batch["loss_mask"][1] = 0.0  # an example without loss tokens does not count
    batch["loss_mask"][2, 3:] = 0.0  # a short one counts as much as a long one
    out = losses.sft_loss(params, CONFIG, batch, averaging="sequence", chunk_size=5)
    logp = np.asarray(_direct_logprobs(params, batch))
    mask = batch["loss_mask"]
    per_example = [-(logp[r] * mask[r]).sum() / mask[r].sum() for r in range(4) if mask[r].sum()]
    np.testing.assert_allclose(losses.mean_loss(out)[0], np.mean(per_example), rtol=1e-5)
    assert float(out.weight) == 3


def test_loss_registry_finds_sft_and_names_unknown_losses():
    assert losses.get_loss("sft") is losses.sft_loss
    assert "sft" in losses.loss_names()
    with pytest.raises(KeyError, match="unknown loss 'nope'.*sft"):
        losses.get_loss("nope")


def test_entropy_of_chunked_logprobs_matches_softmax_entropy():
    params, batch = _params(), _batch(rows=2, length=9)
    hidden, _ = llama.forward(params, CONFIG, batch["input_ids"], return_hidden=True)
    logp, entropy = losses.logprobs_from_hidden(params, CONFIG, hidden, batch["targets"],
                                                chunk_size=4, return_entropy=True)
    logits, _ = llama.forward(params, CONFIG, batch["input_ids"])
    p = jax.nn.softmax(logits, axis=-1)
    expected = -jnp.sum(p * jax.nn.log_softmax(logits, axis=-1), axis=-1)
    np.testing.assert_allclose(entropy, expected, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(logp, _direct_logprobs(params, batch), atol=2e-5)
