"""KV-cache decoding, packing, layer scan and remat all compute the same function."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxreason
from jaxreason.model import KVCache, forward
from hf_oracle import padded_batch, save_variant


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("llama3")
    save_variant("llama3_rope_tied", path)
    return jaxreason.load_pretrained(path)


@pytest.mark.parametrize("scan", [False, True])
def test_prefill_then_token_by_token_decode_equals_full_forward(model, scan):
    config = model.config.replace(scan_layers=scan)
    ids, mask = padded_batch(length=20)
    full = np.asarray(model(ids, attention_mask=mask))
    positions = np.maximum(np.cumsum(mask, 1) - 1, 0)
    cache = KVCache.create(config, batch=4, max_length=32)
    step = jax.jit(lambda c, i, p, m: forward(model.params, config, i, p, m, cache=c))
    prefill = 12
    logits, cache = step(cache, ids[:, :prefill], positions[:, :prefill], mask[:, :prefill])
    outs = [np.asarray(logits)]
    for t in range(prefill, 20):
        logits, cache = step(cache, ids[:, t:t + 1], positions[:, t:t + 1], mask[:, t:t + 1])
        outs.append(np.asarray(logits))
    assert int(cache.index) == 20
    real = mask.astype(bool)
    np.testing.assert_allclose(np.concatenate(outs, 1)[real], full[real], atol=1e-5)


def test_packed_rows_equal_separate_examples(model):
    rng = np.random.RandomState(0)
    a, b = rng.randint(0, 128, 7), rng.randint(0, 128, 9)
    packed = np.concatenate([a, b])[None]
    segments = np.array([[1] * 7 + [2] * 9])
    positions = np.array([list(range(7)) + list(range(9))])
    got = np.asarray(model(packed, positions=positions, segment_ids=segments))[0]
    np.testing.assert_allclose(got[:7], np.asarray(model(a[None]))[0], atol=1e-5)
    np.testing.assert_allclose(got[7:], np.asarray(model(b[None]))[0], atol=1e-5)


@pytest.mark.parametrize("change", [dict(scan_layers=True), dict(remat_policy="full"),
                                    dict(remat_policy="dots", scan_layers=True)])
def test_scan_and_remat_give_same_logits_and_gradients(model, change):
    ids, mask = padded_batch()
    other = model.config.replace(**change)

    def loss(params, config):
        logits, _ = forward(params, config, jnp.asarray(ids), attention_mask=jnp.asarray(mask))
        return jnp.mean(jax.nn.log_softmax(logits)[..., 0] * mask)

    value, grads = jax.jit(jax.value_and_grad(loss), static_argnums=1)(model.params, model.config)
    value2, grads2 = jax.jit(jax.value_and_grad(loss), static_argnums=1)(model.params, other)
    np.testing.assert_allclose(value, value2, rtol=1e-6)
    for g, g2 in zip(jax.tree.leaves(grads), jax.tree.leaves(grads2)):
        np.testing.assert_allclose(g, g2, atol=1e-6)


def test_model_is_a_pytree_that_crosses_jit(model):
    ids, mask = padded_batch()

    @jax.jit
    def f(m, ids):
        return m(ids)
    np.testing.assert_allclose(np.asarray(f(model, ids)), np.asarray(model(ids)), atol=1e-6)
    leaves = jax.tree.leaves(model)
    assert len(leaves) == len(jax.tree.leaves(model.params))


def test_tiny_presets_build_and_run():
    for name in ["llama-tiny", "qwen2-tiny"]:
        config = jaxreason.model.preset_config(name, vocab_size=64)
        m = jaxreason.create_model(config)
        assert m(np.zeros((1, 5), np.int32)).shape == (1, 5, 64)
    with pytest.raises(ValueError, match="preset 'nope'"):
        jaxreason.model.preset_config("nope")
