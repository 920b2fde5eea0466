"""The one KV cache: decode layout, repeat, gather (beams), pad and extend give the logits of a
full forward of the same sequences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxreason
from jaxreason.model import KVCache, forward, llama
from hf_oracle import save_variant


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("qwen2")
    save_variant("qwen2_bias_untied", path)  # q/k/v biases: the fused layout must carry them
    return jaxreason.load_pretrained(path)


def _full_logits(model, rows):
    """Last-position-aligned logits of each token list by an uncached forward (right padded)."""
    length = max(map(len, rows))
    ids = np.zeros((len(rows), length), np.int32)
    mask = np.zeros((len(rows), length), np.int32)
    for r, row in enumerate(rows):
        ids[r, :len(row)] = row
        mask[r, :len(row)] = 1
    return np.asarray(model(ids, attention_mask=mask)), mask


@pytest.mark.parametrize("scan", [False, True])
def test_decode_layout_equals_training_layout(model, scan):
    config = model.config.replace(scan_layers=scan)
    ids = np.random.RandomState(0).randint(0, config.vocab_size, (3, 11)).astype(np.int32)
    full, _ = forward(model.params, config, ids)
    fused, _ = forward(llama.decode_params(model.params, config), config, ids)
    np.testing.assert_allclose(np.asarray(fused), np.asarray(full), atol=1e-5)
    layers = llama.decode_params(model.params, config)["layers"]
    assert isinstance(layers, tuple) != scan  # per-layer tuple for a Python loop over layers


@pytest.mark.parametrize("scan", [False, True])
def test_repeated_gathered_and_extended_cache_equals_full_forward(model, scan):
    """Prefill 2 prefixes once, repeat each 3x, gather rows in a beam order (with a duplicate),
    pad the cache, then extend every row by its own tokens: each extension's logits equal a
    full forward of prefix + extension (1e-4)."""
    config = model.config.replace(scan_layers=scan)
    weights = llama.decode_params(model.params, config)
    rng = np.random.RandomState(1)
    prefixes = [rng.randint(0, config.vocab_size, 7).tolist(),
                rng.randint(0, config.vocab_size, 4).tolist()]
    width = max(map(len, prefixes))
    ids = np.zeros((2, width), np.int32)
    mask = np.zeros((2, width), np.int32)
    for r, p in enumerate(prefixes):  # left padded, as the sampler does
        ids[r, width - len(p):] = p
        mask[r, width - len(p):] = 1
    positions = np.maximum(np.cumsum(mask, 1) - 1, 0)
    cache = KVCache.create(config, 2, width, per_layer=not scan)
    _, cache = jax.jit(lambda c: forward(weights, config, ids, positions, mask, cache=c))(cache)
    cache = cache.repeat(3)  # rows 0-2: prefix 0, rows 3-5: prefix 1
    beam = np.array([4, 0, 0, 5, 2])  # reorder, duplicate, drop
    cache = cache.gather(beam).pad(width + 6)
    assert cache.max_length == width + 6 and cache.batch == 5
    row_prefix = [prefixes[b // 3] for b in beam]
    ext = rng.randint(0, config.vocab_size, (5, 4)).astype(np.int32)
    ext_mask = np.ones_like(ext)
    ext_mask[2, 3] = 0  # one row extends by 3 tokens only (right padding in the chunk)
    start = np.array([len(p) for p in row_prefix])
    ext_positions = start[:, None] + np.arange(4)[None, :]
    logits, cache = jax.jit(lambda c: forward(weights, config, ext, ext_positions, ext_mask,
                                              cache=c))(cache)
    assert int(cache.index) == width + 4
    full, _ = _full_logits(model, [p + e[m.astype(bool)].tolist()
                                   for p, e, m in zip(row_prefix, ext, ext_mask)])
    for r in range(5):
        n = int(ext_mask[r].sum())
        np.testing.assert_allclose(np.asarray(logits)[r, :n],
                                   full[r, start[r]:start[r] + n], atol=1e-4)
    # one more token through the extended cache (decode after an extension)
    nxt = rng.randint(0, config.vocab_size, (5, 1)).astype(np.int32)
    step_pos = (start + ext_mask.sum(1))[:, None]
    step_logits, _ = forward(weights, config, nxt, step_pos, np.ones_like(nxt), cache=cache)
    full2, _ = _full_logits(model, [p + e[m.astype(bool)].tolist() + [int(t[0])]
                                    for p, e, m, t in zip(row_prefix, ext, ext_mask, nxt)])
    for r in range(5):
        np.testing.assert_allclose(np.asarray(step_logits)[r, 0], full2[r, int(step_pos[r, 0])],
                                   atol=1e-4)


def test_cache_layouts_convert_and_refuse_to_shrink(model):
    config = model.config
    stacked = KVCache.create(config, 2, 8)
    per_layer = KVCache.create(config, 2, 8, per_layer=True)
    assert not stacked.per_layer and per_layer.per_layer
    assert stacked.k.shape == (config.num_layers, 2, config.num_kv_heads, 8, config.head_dim)
    assert per_layer.k[0].shape == (2, config.num_kv_heads, 8, config.head_dim)
    with pytest.raises(ValueError, match="shrink"):
        per_layer.pad(4)
    assert jnp.array_equal(per_layer.gather([1, 1, 0]).valid, jnp.zeros((3, 8), bool))


@pytest.mark.parametrize("scan", [False, True])
def test_shared_prefix_cache_equals_full_forward(model, scan):
    """Prefill 2 left-padded prompts once, share each with 3 rows (`shared_prefix`), then
    extend every row by its own tokens (a 3-token chunk, then one decode step): the logits
    equal a full forward of prompt + extension (1e-4), with the prompts' keys held once."""
    config = model.config.replace(scan_layers=scan)
    weights = llama.decode_params(model.params, config)
    rng = np.random.RandomState(2)
    prompts = [rng.randint(0, config.vocab_size, 6).tolist(),
               rng.randint(0, config.vocab_size, 3).tolist()]
    width = 6
    ids = np.zeros((2, width), np.int32)
    mask = np.zeros((2, width), np.int32)
    for r, p in enumerate(prompts):
        ids[r, width - len(p):] = p
        mask[r, width - len(p):] = 1
    positions = np.maximum(np.cumsum(mask, 1) - 1, 0)
    cache = KVCache.create(config, 2, width, per_layer=not scan)
    _, cache = forward(weights, config, ids, positions, mask, cache=cache)
    cache = cache.shared_prefix(3, 5)
    assert cache.shared and cache.batch == 6 and cache.max_length == 5
    assert cache.prefix_valid.shape == (2, width)
    with pytest.raises(ValueError, match="shared prefix"):
        cache.gather([0, 1])
    ext = rng.randint(0, config.vocab_size, (6, 3)).astype(np.int32)
    start = np.array([len(prompts[r // 3]) for r in range(6)])
    ext_positions = start[:, None] + np.arange(3)[None, :]
    logits, cache = jax.jit(lambda c: forward(weights, config, ext, ext_positions,
                                              np.ones_like(ext), cache=c))(cache)
    nxt = rng.randint(0, config.vocab_size, (6, 1)).astype(np.int32)
    step_logits, cache = jax.jit(lambda c: forward(weights, config, nxt, start[:, None] + 3,
                                                   np.ones_like(nxt), cache=c))(cache)
    assert int(cache.index) == 4 and cache.shared
    rows = [prompts[r // 3] + ext[r].tolist() + [int(nxt[r, 0])] for r in range(6)]
    full, _ = _full_logits(model, rows)
    for r in range(6):
        np.testing.assert_allclose(np.asarray(logits)[r], full[r, start[r]:start[r] + 3],
                                   atol=1e-4)
        np.testing.assert_allclose(np.asarray(step_logits)[r, 0], full[r, start[r] + 3],
                                   atol=1e-4)
