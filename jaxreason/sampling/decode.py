"""One-token decode step over a decode-friendly KV cache.

`llama.forward` serves training and prefill; for the decode loop two things about it cost more
than the math on a CPU (and waste bandwidth on accelerators): its cache is stacked over layers in
`[layers, batch, length, kv_heads, head_dim]` order, so every step each layer's keys and values
are copied out and transposed into the `[batch, kv_heads, ...]` order a batched matmul needs;
and stacked weights are sliced (copied) per layer inside the loop. Here the weights are split per
layer once, before the loop, and each layer keeps its own cache already in matmul order: keys
transposed `[batch, kv_heads, head_dim, length]`, values `[batch, kv_heads, length, head_dim]`.
Numerics follow `llama.decoder_layer` (same building blocks, float32 scores and softmax).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxreason.model.config import ModelConfig
from jaxreason.model.llama import (KVCache, apply_rope, lm_head, rms_norm,
                                   rope_inverse_frequencies, rope_tables)
from jaxreason.parallel import constrain

_NEG_INF = -1e30


class DecodeCache(NamedTuple):
    """keys: per layer `[batch, kv_heads, head_dim, length]`; values: per layer
    `[batch, kv_heads, length, head_dim]`; valid: `[batch, length]` slots holding real tokens."""

    keys: tuple[jax.Array, ...]
    values: tuple[jax.Array, ...]
    valid: jax.Array


def split_layers(params: Any, config: ModelConfig) -> list[dict[str, jax.Array]]:
    """Per-layer weights for `decode_step`, made once before the decode loop.

    Queries, keys and values become one `[embed, kv_heads, groups + 2, head_dim]` matrix (the
    queries of each kv head, then its key and value) and gate/up one `[embed, 2, mlp]` matrix,
    so a layer runs two wide matmuls instead of five narrow ones. Grouping by kv head keeps the
    tensor-parallel split (heads over `tensor`) intact. The `embed` axis is gathered (no FSDP
    split): weights are gathered once per generate call, not once per token.
    """
    dtype = jnp.dtype(config.dtype)
    e, d, kv = config.hidden_size, config.head_dim, config.num_kv_heads
    g = config.num_heads // kv
    layers = []
    for i in range(config.num_layers):
        w = jax.tree.map(lambda p, i=i: p[i].astype(dtype), params["layers"])
        qkv = jnp.concatenate([w["q"].reshape(e, kv, g, d), w["k"].reshape(e, kv, 1, d),
                               w["v"].reshape(e, kv, 1, d)], axis=2)
        layer = {
            "attn_norm": w["attn_norm"], "mlp_norm": w["mlp_norm"],
            "qkv": constrain(qkv, (None, "kv_heads", None, None)),
            "o": constrain(w["o"].reshape(kv, g, d, e), ("kv_heads", None, None, None)),
            "gate_up": constrain(jnp.stack([w["gate"], w["up"]], axis=1), (None, None, "mlp")),
            "down": constrain(w["down"], ("mlp", None)),
        }
        if config.qkv_bias:
            layer["qkv_bias"] = jnp.concatenate(
                [w["q_bias"].reshape(kv, g, d), w["k_bias"].reshape(kv, 1, d),
                 w["v_bias"].reshape(kv, 1, d)], axis=1)
        if config.o_bias:
            layer["o_bias"] = w["o_bias"]
        layers.append(layer)
    return layers


def head_params(params: Any, config: ModelConfig) -> dict[str, jax.Array]:
    """Embedding, final norm and output projection with the `embed` axis gathered."""
    out = {"embed": constrain(params["embed"], ("vocab", None)),
           "final_norm": params["final_norm"]}
    if not config.tie_word_embeddings:
        out["lm_head"] = constrain(params["lm_head"], (None, "vocab"))
    return out


def from_prefill(cache: KVCache, length: int) -> DecodeCache:
    """Move a prefilled `KVCache` (`[layers, batch, prompt, kv_heads, head_dim]`) into a
    `DecodeCache` of `length` slots, the prompt in the first slots."""
    pad = length - cache.k.shape[2]
    keys = jnp.pad(cache.k.transpose(0, 1, 3, 4, 2), ((0, 0),) * 4 + ((0, pad),))
    values = jnp.pad(cache.v.transpose(0, 1, 3, 2, 4), ((0, 0),) * 3 + ((0, pad), (0, 0)))
    keys = constrain(keys, ("layers", "batch", "act_kv_heads", None, "cache_length"))
    values = constrain(values, ("layers", "batch", "act_kv_heads", "cache_length", None))
    valid = jnp.pad(cache.valid, ((0, 0), (0, pad)))
    return DecodeCache(tuple(keys), tuple(values), valid)


def decode_step(params: Any, layers: list[dict[str, jax.Array]], config: ModelConfig,
                tokens: jax.Array, positions: jax.Array, slot: jax.Array,
                cache: DecodeCache) -> tuple[jax.Array, DecodeCache]:
    """Logits `[batch, vocab]` (float32) of the next token after `tokens [batch]` at
    `positions [batch]`, written to cache `slot` (same for all rows), and the updated cache.
    params: `head_params(...)`; layers: `split_layers(...)`."""
    dtype = jnp.dtype(config.dtype)
    h = constrain(params["embed"].astype(dtype)[tokens], ("batch", "act_embed"))
    rope = rope_tables(positions[:, None], rope_inverse_frequencies(config))
    valid = jax.lax.dynamic_update_slice(cache.valid, jnp.ones((tokens.shape[0], 1), bool),
                                         (0, slot))
    bias = jnp.where(valid, 0.0, _NEG_INF)[:, None, None, :]  # [batch, 1, 1, length]
    keys, values = [], []
    for layer, ck, cv in zip(layers, cache.keys, cache.values):
        h, ck, cv = _layer(config, layer, h, rope, bias, ck, cv, slot)
        keys.append(ck)
        values.append(cv)
    h = rms_norm(h, params["final_norm"], config.rms_norm_eps)
    return lm_head(params, config, h), DecodeCache(tuple(keys), tuple(values), valid)


def _layer(config: ModelConfig, layer: dict[str, jax.Array], h: jax.Array,
           rope: tuple[jax.Array, jax.Array], bias: jax.Array, ck: jax.Array, cv: jax.Array,
           slot: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    b = h.shape[0]
    kv, d = config.num_kv_heads, config.head_dim
    g = config.num_heads // kv
    x = rms_norm(h, layer["attn_norm"], config.rms_norm_eps)
    qkv = jnp.einsum("be,ekjd->bkjd", x, layer["qkv"])  # [b, kv, g + 2, d]
    if config.qkv_bias:
        qkv = qkv + layer["qkv_bias"]
    qkv = constrain(qkv, ("batch", "act_kv_heads", None, None))
    q = apply_rope(qkv[:, :, :g].reshape(b, 1, kv * g, d), rope).reshape(b, kv, g, d)
    k = apply_rope(qkv[:, None, :, g], rope)[:, 0]  # [b, kv, d]
    v = qkv[:, :, g + 1]
    ck = jax.lax.dynamic_update_slice(ck, k[:, :, :, None].astype(ck.dtype), (0, 0, 0, slot))
    cv = jax.lax.dynamic_update_slice(cv, v[:, :, None, :].astype(cv.dtype), (0, 0, slot, 0))
    scores = jnp.einsum("bkgd,bkds->bkgs", q, ck.astype(q.dtype),
                        preferred_element_type=jnp.float32)
    scores = scores * (1.0 / math.sqrt(d)) + bias
    probs = jax.nn.softmax(scores, axis=-1).astype(cv.dtype)
    out = jnp.einsum("bkgs,bksd->bkgd", probs, cv).astype(h.dtype)
    out = jnp.einsum("bkgd,kgde->be", out, layer["o"])
    if config.o_bias:
        out = out + layer["o_bias"]
    h = constrain(h + out, ("batch", "act_embed"))
    x = rms_norm(h, layer["mlp_norm"], config.rms_norm_eps)
    gate_up = constrain(jnp.einsum("be,ejm->bjm", x, layer["gate_up"]), ("batch", None, "act_mlp"))
    act = jax.nn.silu(gate_up[:, 0]) * gate_up[:, 1]
    h = constrain(h + act @ layer["down"], ("batch", "act_embed"))
    return h, ck, cv
