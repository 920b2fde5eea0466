"""Decoder-only Llama / Qwen2 as a pure function of (config, params).

Parameters are a plain dict pytree with every layer's weights stacked on a leading `layers`
axis; the same layout serves a Python loop over layers (best for small models) and `lax.scan`
(`config.scan_layers`, compile time independent of depth). Each parameter has logical axis
names (`param_logical_axes`) that `jaxreason.parallel` maps onto the device mesh.

Attention masks are built from three sources that cover every caller: `attention_mask` marks
real tokens (padding excluded), `segment_ids` separates examples packed into one row, and a
KV cache marks which of its slots hold real tokens. Positions are explicit, so left and right
padding give identical results to unpadded rows.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp

from jaxreason.model.config import ModelConfig
from jaxreason.parallel import constrain

Params = dict[str, Any]

_NEG_INF = -1e30  # finite, so fully masked rows (padding queries) give no NaNs


# ----------------------------------------------------------------------------- parameters

def param_logical_axes(config: ModelConfig) -> Params:
    """Logical axis names of every parameter, same tree structure as the params."""
    layers = {
        "attn_norm": ("layers", "norm"),
        "q": ("layers", "embed", "heads", "head_dim"),
        "k": ("layers", "embed", "kv_heads", "head_dim"),
        "v": ("layers", "embed", "kv_heads", "head_dim"),
        "o": ("layers", "heads", "head_dim", "embed"),
        "mlp_norm": ("layers", "norm"),
        "gate": ("layers", "embed", "mlp"),
        "up": ("layers", "embed", "mlp"),
        "down": ("layers", "mlp", "embed"),
    }
    if config.qkv_bias:
        layers.update(q_bias=("layers", "heads", "head_dim"),
                      k_bias=("layers", "kv_heads", "head_dim"),
                      v_bias=("layers", "kv_heads", "head_dim"))
    if config.o_bias:
        layers["o_bias"] = ("layers", "norm")
    axes: Params = {"embed": ("vocab", "embed"), "layers": layers, "final_norm": ("norm",)}
    if not config.tie_word_embeddings:
        axes["lm_head"] = ("embed", "vocab")
    return axes


def param_shapes(config: ModelConfig) -> Params:
    """Shapes of every parameter, same tree structure as the params."""
    n, h, i = config.num_layers, config.hidden_size, config.intermediate_size
    nh, kv, d = config.num_heads, config.num_kv_heads, config.head_dim
    layers = {
        "attn_norm": (n, h), "q": (n, h, nh, d), "k": (n, h, kv, d), "v": (n, h, kv, d),
        "o": (n, nh, d, h), "mlp_norm": (n, h), "gate": (n, h, i), "up": (n, h, i),
        "down": (n, i, h),
    }
    if config.qkv_bias:
        layers.update(q_bias=(n, nh, d), k_bias=(n, kv, d), v_bias=(n, kv, d))
    if config.o_bias:
        layers["o_bias"] = (n, h)
    shapes: Params = {"embed": (config.vocab_size, h), "layers": layers, "final_norm": (h,)}
    if not config.tie_word_embeddings:
        shapes["lm_head"] = (h, config.vocab_size)
    return shapes


def init_params(config: ModelConfig, rng: jax.Array, std: float = 0.02) -> Params:
    """Random parameters as `transformers` initializes them: N(0, std) matrices, unit norms,
    zero biases. Wrap in `jax.jit(..., out_shardings=...)` to create them already sharded."""
    shapes = param_shapes(config)
    leaves, treedef = jax.tree.flatten(shapes, is_leaf=lambda s: isinstance(s, tuple))
    paths = [jax.tree_util.keystr(p) for p, _ in
             jax.tree_util.tree_flatten_with_path(shapes, is_leaf=lambda s: isinstance(s, tuple))[0]]
    keys = jax.random.split(rng, len(leaves))
    dtype = jnp.dtype(config.param_dtype)
    out = []
    for path, shape, key in zip(paths, leaves, keys):
        if "norm" in path:
            out.append(jnp.ones(shape, dtype))
        elif "bias" in path:
            out.append(jnp.zeros(shape, dtype))
        else:
            out.append((std * jax.random.normal(key, shape, jnp.float32)).astype(dtype))
    return jax.tree.unflatten(treedef, out)


# ----------------------------------------------------------------------------- KV cache

@jax.tree_util.register_dataclass
@dataclasses.dataclass
class KVCache:
    """Preallocated keys/values for incremental decoding.

    k, v: `[layers, batch, max_length, kv_heads, head_dim]`; `valid`: `[batch, max_length]`,
    true where a slot holds a real (non-padding) token; `index`: int32 scalar, the next slot to
    write. All rows write the same slots, so a padded batch needs no per-row scatter.
    """

    k: jax.Array
    v: jax.Array
    valid: jax.Array
    index: jax.Array

    @classmethod
    def create(cls, config: ModelConfig, batch: int, max_length: int,
               dtype: Any = None) -> "KVCache":
        dtype = jnp.dtype(dtype or config.dtype)
        shape = (config.num_layers, batch, max_length, config.num_kv_heads, config.head_dim)
        return cls(k=jnp.zeros(shape, dtype), v=jnp.zeros(shape, dtype),
                   valid=jnp.zeros((batch, max_length), bool), index=jnp.zeros((), jnp.int32))

    @staticmethod
    def logical_axes() -> "KVCache":
        kv = ("layers", "batch", "cache_length", "act_kv_heads", None)
        return KVCache(k=kv, v=kv, valid=("batch", "cache_length"), index=())  # type: ignore


# ----------------------------------------------------------------------------- building blocks

def rms_norm(x: jax.Array, weight: jax.Array, eps: float) -> jax.Array:
    """RMSNorm computed in float32, then cast back (as transformers does)."""
    dtype = x.dtype
    x32 = x.astype(jnp.float32)
    x32 = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + eps)
    return weight.astype(dtype) * x32.astype(dtype)


def rope_inverse_frequencies(config: ModelConfig) -> jax.Array:
    """Per-pair inverse frequencies `[head_dim // 2]`, with linear / llama3 scaling applied."""
    d = config.head_dim
    inv = 1.0 / (config.rope_theta ** (jnp.arange(0, d, 2, dtype=jnp.float32) / d))
    s = config.rope_scaling
    if s.rope_type == "linear":
        inv = inv / s.factor
    elif s.rope_type == "llama3":
        low_wavelen = s.original_max_position_embeddings / s.low_freq_factor
        high_wavelen = s.original_max_position_embeddings / s.high_freq_factor
        wavelen = 2 * math.pi / inv
        scaled = jnp.where(wavelen > low_wavelen, inv / s.factor, inv)
        smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) / (
            s.high_freq_factor - s.low_freq_factor)
        smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled
        medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
        inv = jnp.where(medium, smoothed, scaled)
    return inv


def rope_tables(positions: jax.Array, inv_freq: jax.Array) -> tuple[jax.Array, jax.Array]:
    """cos and sin `[batch, length, 1, head_dim // 2]` of `positions [batch, length]`, computed
    once per forward and shared by every layer."""
    angles = positions.astype(jnp.float32)[..., None] * inv_freq
    return jnp.cos(angles)[:, :, None, :], jnp.sin(angles)[:, :, None, :]


def apply_rope(x: jax.Array, rope: tuple[jax.Array, jax.Array]) -> jax.Array:
    """Rotate `x [batch, length, heads, head_dim]` in HF's rotate-half layout (the layout HF
    checkpoints' q/k weights are permuted for)."""
    cos, sin = rope
    x32 = x.astype(jnp.float32)
    x1, x2 = jnp.split(x32, 2, axis=-1)
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(x.dtype)


def attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array) -> jax.Array:
    """Grouped-query attention.

    q: `[batch, q_len, heads, head_dim]`; k, v: `[batch, kv_len, kv_heads, head_dim]`;
    mask: `[batch, q_len, kv_len]` bool. The query heads sharing a kv head are folded into the
    query axis so each kv head is one batched matmul. Scores and softmax in float32.
    """
    b, t, nh, d = q.shape
    kv_heads = k.shape[2]
    groups = nh // kv_heads
    q = q.reshape(b, t, kv_heads, groups, d).transpose(0, 2, 3, 1, 4).reshape(
        b, kv_heads, groups * t, d)
    scores = jnp.einsum("bkqd,bskd->bkqs", q, k, preferred_element_type=jnp.float32)
    scores = scores.reshape(b, kv_heads, groups, t, -1) * (1.0 / math.sqrt(d))
    scores = jnp.where(mask[:, None, None, :, :], scores, _NEG_INF)
    probs = jax.nn.softmax(scores, axis=-1).astype(v.dtype).reshape(b, kv_heads, groups * t, -1)
    out = jnp.einsum("bkqs,bskd->bkqd", probs, v)
    return out.reshape(b, kv_heads, groups, t, d).transpose(0, 3, 1, 2, 4).reshape(b, t, nh, d)


def causal_attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array) -> jax.Array:
    """`attention` for a mask that is causal within the row (no KV cache), computed by query
    blocks that each see only the keys up to their own end. This skips the masked upper
    triangle, about half the work, and keeps each block's scores in cache: on CPU it is ~3x
    faster than one full `[length, length]` score matrix."""
    t = q.shape[1]
    block = max(_MIN_QUERY_BLOCK, -(-t // _MAX_QUERY_BLOCKS))
    if t <= block:
        return attention(q, k, v, mask)
    outs = []
    for start in range(0, t, block):
        end = min(start + block, t)
        outs.append(attention(q[:, start:end], k[:, :end], v[:, :end], mask[:, start:end, :end]))
    return jnp.concatenate(outs, axis=1)


_MIN_QUERY_BLOCK = 64
_MAX_QUERY_BLOCKS = 16


def _dense(x: jax.Array, w: jax.Array, spec: str) -> jax.Array:
    return jnp.einsum(spec, x, w.astype(x.dtype))


def decoder_layer(config: ModelConfig, layer: Params, h: jax.Array,
                  mask: jax.Array, rope: tuple[jax.Array, jax.Array],
                  cache_kv: tuple[jax.Array, jax.Array] | None, layer_index: Any,
                  cache_index: jax.Array | None) -> tuple[jax.Array, Any]:
    """One pre-norm block. With a cache (the stacked `[layers, ...]` k and v), the new keys and
    values are written in place at (`layer_index`, `cache_index`) and attention runs over the
    layer's whole cache."""
    x = rms_norm(h, layer["attn_norm"], config.rms_norm_eps)
    q = _dense(x, layer["q"], "bte,ehd->bthd")
    k = _dense(x, layer["k"], "bte,ehd->bthd")
    v = _dense(x, layer["v"], "bte,ehd->bthd")
    if config.qkv_bias:
        q = q + layer["q_bias"].astype(q.dtype)
        k = k + layer["k_bias"].astype(k.dtype)
        v = v + layer["v_bias"].astype(v.dtype)
    q = constrain(apply_rope(q, rope), ("batch", "length", "act_heads", None))
    k = apply_rope(k, rope)
    new_cache = None
    if cache_kv is not None:
        ck, cv = cache_kv
        start = (layer_index, 0, cache_index, 0, 0)
        ck = jax.lax.dynamic_update_slice(ck, k[None].astype(ck.dtype), start)
        cv = jax.lax.dynamic_update_slice(cv, v[None].astype(cv.dtype), start)
        new_cache = (ck, cv)
        k, v = ck[layer_index].astype(q.dtype), cv[layer_index].astype(q.dtype)
    out = attention(q, k, v, mask) if cache_kv is not None else causal_attention(q, k, v, mask)
    out = _dense(out, layer["o"], "bthd,hde->bte")
    if config.o_bias:
        out = out + layer["o_bias"].astype(out.dtype)
    h = constrain(h + out, ("batch", "length", "act_embed"))
    x = rms_norm(h, layer["mlp_norm"], config.rms_norm_eps)
    gate = _dense(x, layer["gate"], "bte,em->btm")
    up = _dense(x, layer["up"], "bte,em->btm")
    act = constrain(jax.nn.silu(gate) * up, ("batch", "length", "act_mlp"))
    h = constrain(h + _dense(act, layer["down"], "btm,me->bte"), ("batch", "length", "act_embed"))
    return h, new_cache


_REMAT = {
    "full": None,
    "dots": jax.checkpoint_policies.checkpoint_dots,
    "dots_no_batch": jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims,
}


def _attention_mask(attention_mask: jax.Array, segment_ids: jax.Array | None,
                    cache: KVCache | None) -> tuple[jax.Array, jax.Array | None]:
    """Boolean `[batch, q_len, kv_len]` mask and the cache's updated `valid` slots."""
    b, t = attention_mask.shape
    real = attention_mask.astype(bool)
    if cache is None:
        causal = jnp.tril(jnp.ones((t, t), bool))
        mask = causal[None] & real[:, None, :] & real[:, :, None]
        if segment_ids is not None:
            mask &= segment_ids[:, :, None] == segment_ids[:, None, :]
        return mask, None
    if segment_ids is not None:
        raise ValueError("segment_ids (packing) cannot be combined with a KV cache")
    valid = jax.lax.dynamic_update_slice(cache.valid, real, (0, cache.index))
    slots = jnp.arange(valid.shape[1])
    query_slots = cache.index + jnp.arange(t)
    causal = slots[None, :] <= query_slots[:, None]  # [t, s]
    mask = causal[None] & valid[:, None, :] & real[:, :, None]
    return mask, valid


def forward(params: Params, config: ModelConfig, input_ids: jax.Array,
            positions: jax.Array | None = None, attention_mask: jax.Array | None = None,
            *, segment_ids: jax.Array | None = None, cache: KVCache | None = None,
            return_hidden: bool = False) -> tuple[jax.Array, KVCache | None]:
    """Logits `[batch, length, vocab]` (float32 unless `dtype` is lower) and the updated cache.

    input_ids: `[batch, length]` int. positions: `[batch, length]`, default: count of real
    tokens before each one (so left padding is transparent). attention_mask: `[batch, length]`,
    1 for real tokens. segment_ids: `[batch, length]`, packed-example ids (tokens attend only
    within their segment; positions should restart per segment). cache: see `KVCache`.
    With `return_hidden`, the final-norm hidden states `[batch, length, hidden]` are returned
    instead of logits, for losses that compute the vocabulary projection in chunks.
    """
    dtype = jnp.dtype(config.dtype)
    if attention_mask is None:
        attention_mask = jnp.ones(input_ids.shape, jnp.int32)
    if positions is None:
        positions = jnp.maximum(jnp.cumsum(attention_mask.astype(jnp.int32), axis=1) - 1, 0)
        if cache is not None:
            raise ValueError("positions are required with a KV cache")
    mask, valid = _attention_mask(attention_mask, segment_ids, cache)
    rope = rope_tables(positions, rope_inverse_frequencies(config))

    h = params["embed"].astype(dtype)[input_ids]
    h = constrain(h, ("batch", "length", "act_embed"))
    cache_index = None if cache is None else cache.index

    def block(h: jax.Array, layer: Params, kv: Any, index: Any) -> tuple[jax.Array, Any]:
        return decoder_layer(config, layer, h, mask, rope, kv, index, cache_index)

    if config.remat_policy != "none":
        block = jax.checkpoint(block, policy=_REMAT[config.remat_policy])

    kv = None if cache is None else (cache.k, cache.v)
    if config.scan_layers:
        def step(carry: Any, xs: Any) -> tuple[Any, None]:
            h, kv = carry
            layer, index = xs
            return block(h, layer, kv, index), None
        xs = (params["layers"], jnp.arange(config.num_layers))
        (h, kv), _ = jax.lax.scan(step, (h, kv), xs)
    else:
        for i in range(config.num_layers):
            layer = jax.tree.map(lambda p: p[i], params["layers"])
            h, kv = block(h, layer, kv, i)

    h = rms_norm(h, params["final_norm"], config.rms_norm_eps)
    new_cache = None
    if cache is not None:
        new_cache = KVCache(k=kv[0], v=kv[1], valid=valid,
                            index=cache.index + input_ids.shape[1])
    if return_hidden:
        return h, new_cache
    return lm_head(params, config, h), new_cache


def lm_head(params: Params, config: ModelConfig, hidden: jax.Array) -> jax.Array:
    """Vocabulary logits `[..., vocab]` of final hidden states, accumulated in float32."""
    if config.tie_word_embeddings:
        w = params["embed"].astype(hidden.dtype)
        logits = jnp.einsum("...e,ve->...v", hidden, w, preferred_element_type=jnp.float32)
    else:
        w = params["lm_head"].astype(hidden.dtype)
        logits = jnp.einsum("...e,ev->...v", hidden, w, preferred_element_type=jnp.float32)
    return constrain(logits, ("batch", "length", "act_vocab")) if logits.ndim == 3 else logits
