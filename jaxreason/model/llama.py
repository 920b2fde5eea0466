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

from jaxreason.model import lora
from jaxreason.model.config import ModelConfig
from jaxreason.model.kv_cache import KVCache
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
    if config.lora is not None:  # LoRA: adapters beside the (possibly quantized) base
        if config.lora.quantization != "none":
            layers = lora.quantized_layer_axes(config, layers)
        layers["lora"] = lora.adapter_logical_axes(config)
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
    if config.lora is not None:
        if config.lora.quantization != "none":
            layers = lora.quantized_layer_shapes(config, layers)
        layers["lora"] = lora.adapter_shapes(config)
    shapes: Params = {"embed": (config.vocab_size, h), "layers": layers, "final_norm": (h,)}
    if not config.tie_word_embeddings:
        shapes["lm_head"] = (h, config.vocab_size)
    return shapes


def init_params(config: ModelConfig, rng: jax.Array, std: float = 0.02) -> Params:
    """Random parameters as `transformers` initializes them: N(0, std) matrices, unit norms,
    zero biases. Wrap in `jax.jit(..., out_shardings=...)` to create them already sharded.
    A LoRA model (`config.lora`) gets such a base plus fresh adapters (`lora.attach`)."""
    if config.lora is not None:
        base_rng, adapter_rng = jax.random.split(rng)
        base = init_params(config.replace(lora=None), base_rng, std)
        return lora.attach(base, config, adapter_rng)
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


def attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array,
              prefix: tuple[jax.Array, jax.Array, jax.Array] | None = None) -> jax.Array:
    """Grouped-query attention: the only attention in the package (training, prefill, decode).

    q: `[batch, q_len, heads, head_dim]`; k, v: `[batch, kv_heads, kv_len, head_dim]` (the KV
    cache's order); mask: `[batch, q_len, kv_len]` bool. The query heads sharing a kv head are
    folded into the query axis so each kv head is one batched matmul. Scores and softmax in
    float32.

    prefix: keys and values `[prompts, kv_heads, prefix_len, head_dim]` and their valid mask
    `[prompts, prefix_len]` that every one of n = batch / prompts consecutive rows also attends
    to (a shared prompt, `KVCache.shared_prefix`): one softmax over prefix and own keys, the
    prefix read once per prompt with the queries of its n rows stacked into one matmul.
    """
    b, t, nh, d = q.shape
    kv_heads = k.shape[1]
    groups = nh // kv_heads
    q = q.reshape(b, t, kv_heads, groups, d).transpose(0, 2, 3, 1, 4).reshape(
        b, kv_heads, groups * t, d)
    scale = 1.0 / math.sqrt(d)
    scores = jnp.einsum("bkqd,bksd->bkqs", q, k, preferred_element_type=jnp.float32)
    scores = scores.reshape(b, kv_heads, groups, t, -1) * scale
    scores = jnp.where(mask[:, None, None, :, :], scores, _NEG_INF)
    length = 0
    if prefix is not None:
        pk, pv, pvalid = prefix
        prompts, length = pk.shape[0], pk.shape[2]
        n = b // prompts

        def by_prompt(x: jax.Array) -> jax.Array:  # [b, k, m, ...] -> [prompts, k, n * m, ...]
            x = x.reshape((prompts, n) + x.shape[1:])
            x = jnp.swapaxes(x, 1, 2)
            return x.reshape((prompts, kv_heads, n * x.shape[3]) + x.shape[4:])

        def by_row(x: jax.Array) -> jax.Array:  # inverse of by_prompt
            x = x.reshape((prompts, kv_heads, n, -1) + x.shape[3:])
            return jnp.swapaxes(x, 1, 2).reshape((b, kv_heads, -1) + x.shape[4:])

        shared = jnp.einsum("pkqd,pksd->pkqs", by_prompt(q), pk,
                            preferred_element_type=jnp.float32)
        shared = by_row(shared).reshape(b, kv_heads, groups, t, length) * scale
        prefix_mask = jnp.repeat(pvalid, n, axis=0)[:, None, None, None, :]
        scores = jnp.concatenate([jnp.where(prefix_mask, shared, _NEG_INF), scores], axis=-1)
    probs = jax.nn.softmax(scores, axis=-1).astype(v.dtype).reshape(b, kv_heads, groups * t, -1)
    out = jnp.einsum("bkqs,bksd->bkqd", probs[..., length:], v)
    if prefix is not None:  # one softmax over prefix and own keys, then both halves of the sum
        out = out + by_row(jnp.einsum("pkqs,pksd->pkqd", by_prompt(probs[..., :length]), pv))
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
        outs.append(attention(q[:, start:end], k[:, :, :end], v[:, :, :end],
                              mask[:, start:end, :end]))
    return jnp.concatenate(outs, axis=1)


_MIN_QUERY_BLOCK = 64
_MAX_QUERY_BLOCKS = 16


def _dense(x: jax.Array, w: Any, spec: str) -> jax.Array:
    """`einsum(spec, x, w)` in x's dtype; a quantized (QLoRA) weight is dequantized here."""
    return jnp.einsum(spec, x, lora.dense_weight(w, x.dtype))


def _adapted(config: ModelConfig, layer: Params, name: str, x: jax.Array,
             y: jax.Array) -> jax.Array:
    """`y`, the output of projection `name` on `x`, plus its LoRA adapter's term (if any)."""
    adapters = layer.get("lora")
    if adapters is None or name not in adapters:
        return y
    return y + lora.delta(x, adapters[name], config.lora).astype(y.dtype)


def _project_qkv(config: ModelConfig, layer: Params, x: jax.Array
                 ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """q `[b, t, heads, d]`, k and v `[b, t, kv_heads, d]`, from separate q / k / v weights
    (the training layout) or one fused `qkv` weight (`decode_params`: one wide matmul)."""
    if "qkv" in layer:
        b, t, _ = x.shape
        kv, d = config.num_kv_heads, config.head_dim
        groups = config.num_heads // kv
        qkv = _dense(x, layer["qkv"], "bte,ekjd->btkjd")  # [b, t, kv, groups + 2, d]
        if config.qkv_bias:
            qkv = qkv + layer["qkv_bias"].astype(qkv.dtype)
        qkv = constrain(qkv, ("batch", "length", "act_kv_heads", None, None))
        q = qkv[:, :, :, :groups].reshape(b, t, kv * groups, d)
        k, v = qkv[:, :, :, groups], qkv[:, :, :, groups + 1]
    else:
        q = _dense(x, layer["q"], "bte,ehd->bthd")
        k = _dense(x, layer["k"], "bte,ehd->bthd")
        v = _dense(x, layer["v"], "bte,ehd->bthd")
        if config.qkv_bias:
            q = q + layer["q_bias"].astype(q.dtype)
            k = k + layer["k_bias"].astype(k.dtype)
            v = v + layer["v_bias"].astype(v.dtype)
    return (_adapted(config, layer, "q", x, q), _adapted(config, layer, "k", x, k),
            _adapted(config, layer, "v", x, v))


def _gate_up(config: ModelConfig, layer: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The MLP's gate and up projections, from separate weights or one fused `gate_up`."""
    if "gate_up" in layer:
        both = constrain(_dense(x, layer["gate_up"], "bte,ejm->btjm"),
                         ("batch", "length", None, "act_mlp"))
        gate, up = both[:, :, 0], both[:, :, 1]
    else:
        gate, up = _dense(x, layer["gate"], "bte,em->btm"), _dense(x, layer["up"], "bte,em->btm")
    return _adapted(config, layer, "gate", x, gate), _adapted(config, layer, "up", x, up)


def decoder_layer(config: ModelConfig, layer: Params, h: jax.Array,
                  mask: jax.Array, rope: tuple[jax.Array, jax.Array],
                  cache_kv: tuple[jax.Array, jax.Array] | None,
                  cache_index: jax.Array | None) -> tuple[jax.Array, Any]:
    """One pre-norm block: the only decoder-layer code in the package. With a cache (this
    layer's `[batch, kv_heads, length, head_dim]` keys and values) the new keys and values are
    written at slot `cache_index` and attention runs over the whole cache; the updated
    (keys, values) are returned."""
    x = rms_norm(h, layer["attn_norm"], config.rms_norm_eps)
    q, k, v = _project_qkv(config, layer, x)
    q = constrain(apply_rope(q, rope), ("batch", "length", "act_heads", None))
    k = apply_rope(k, rope).transpose(0, 2, 1, 3)  # [b, kv_heads, t, d]
    v = v.transpose(0, 2, 1, 3)
    new_cache = None
    if cache_kv is not None:
        ck, cv = cache_kv[:2]
        ck = jax.lax.dynamic_update_slice(ck, k.astype(ck.dtype), (0, 0, cache_index, 0))
        cv = jax.lax.dynamic_update_slice(cv, v.astype(cv.dtype), (0, 0, cache_index, 0))
        new_cache = (ck, cv)
        prefix = None
        if len(cache_kv) == 5:  # a shared prefix: (keys, values, valid)
            pk, pv, pvalid = cache_kv[2:]
            prefix = (pk.astype(q.dtype), pv.astype(q.dtype), pvalid)
        out = attention(q, ck.astype(q.dtype), cv.astype(q.dtype), mask, prefix)
    else:
        out = causal_attention(q, k, v, mask)
    out = _adapted(config, layer, "o", out, _dense(out, layer["o"], "bthd,hde->bte"))
    if config.o_bias:
        out = out + layer["o_bias"].astype(out.dtype)
    h = constrain(h + out, ("batch", "length", "act_embed"))
    x = rms_norm(h, layer["mlp_norm"], config.rms_norm_eps)
    gate, up = _gate_up(config, layer, x)
    act = constrain(jax.nn.silu(gate) * up, ("batch", "length", "act_mlp"))
    down = _adapted(config, layer, "down", act, _dense(act, layer["down"], "btm,me->bte"))
    h = constrain(h + down, ("batch", "length", "act_embed"))
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


def decode_params(params: Params, config: ModelConfig) -> Params:
    """The parameters re-laid out for generation, once per sampling call: a data transform,
    not a second model. q / k / v become one `[embed, kv_heads, groups + 2, head_dim]` weight
    (each kv head's queries, then its key and value) and gate / up one `[embed, 2, mlp]`
    weight, so a layer runs two wide matmuls instead of five narrow ones; grouping by kv head
    keeps the tensor-parallel split (heads over `tensor`). The `embed` axis is gathered (no
    FSDP split: gathered once per call, not once per token), weights are cast to the compute
    dtype, and for a Python loop over layers (`scan_layers=False`) the layers become a tuple
    of per-layer dicts, so no step slices a stacked buffer. `forward` accepts either layout.
    LoRA adapters come along unmerged (the layer adds their term to each projection);
    quantized (QLoRA) base weights stay quantized and unfused."""
    dtype = jnp.dtype(config.dtype)
    e, d, kv = config.hidden_size, config.head_dim, config.num_kv_heads
    g = config.num_heads // kv

    def fuse(w: Params, lead: tuple[int, ...]) -> Params:
        base, adapters = lora.split({"layers": w})
        w = base["layers"]
        if adapters is not None:  # run unmerged, in the compute dtype
            adapters = jax.tree.map(lambda p: p.astype(dtype), adapters)
        if config.lora is not None and config.lora.quantization != "none":
            # QLoRA: weights stay quantized (dequantized one layer at a time, per use)
            out = {k: v if k in lora.PROJECTIONS else v.astype(dtype) for k, v in w.items()}
            return lora.join({"layers": out}, adapters)["layers"]
        w = jax.tree.map(lambda p: p.astype(dtype), w)
        stacked = (None,) * len(lead)
        qkv = jnp.concatenate([w["q"].reshape(*lead, e, kv, g, d),
                               w["k"].reshape(*lead, e, kv, 1, d),
                               w["v"].reshape(*lead, e, kv, 1, d)], axis=-2)
        out = {
            "attn_norm": w["attn_norm"], "mlp_norm": w["mlp_norm"],
            "qkv": constrain(qkv, stacked + (None, "kv_heads", None, None)),
            "o": constrain(w["o"], stacked + ("heads", None, None)),
            "gate_up": constrain(jnp.stack([w["gate"], w["up"]], axis=-2),
                                 stacked + (None, None, "mlp")),
            "down": constrain(w["down"], stacked + ("mlp", None)),
        }
        if config.qkv_bias:
            out["qkv_bias"] = jnp.concatenate(
                [w["q_bias"].reshape(*lead, kv, g, d), w["k_bias"].reshape(*lead, kv, 1, d),
                 w["v_bias"].reshape(*lead, kv, 1, d)], axis=-2)
        if config.o_bias:
            out["o_bias"] = w["o_bias"]
        return lora.join({"layers": out}, adapters)["layers"]

    out: Params = {"embed": constrain(params["embed"], ("vocab", None)),
                   "final_norm": params["final_norm"]}
    if not config.tie_word_embeddings:
        out["lm_head"] = constrain(params["lm_head"], (None, "vocab"))
    if config.scan_layers:
        out["layers"] = fuse(params["layers"], (config.num_layers,))
    else:
        out["layers"] = tuple(fuse(jax.tree.map(lambda p, i=i: p[i], params["layers"]), ())
                              for i in range(config.num_layers))
    return out


def forward(params: Params, config: ModelConfig, input_ids: jax.Array,
            positions: jax.Array | None = None, attention_mask: jax.Array | None = None,
            *, segment_ids: jax.Array | None = None, cache: KVCache | None = None,
            return_hidden: bool = False) -> tuple[jax.Array, KVCache | None]:
    """Logits `[batch, length, vocab]` (float32 unless `dtype` is lower) and the updated cache.

    input_ids: `[batch, length]` int. positions: `[batch, length]`, default: count of real
    tokens before each one (so left padding is transparent). attention_mask: `[batch, length]`,
    1 for real tokens. segment_ids: `[batch, length]`, packed-example ids (tokens attend only
    within their segment; positions should restart per segment). cache: see `KVCache`.
    params: the training layout (layers stacked) or `decode_params(...)`'s.
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

    def block(h: jax.Array, layer: Params, kv: Any) -> tuple[jax.Array, Any]:
        return decoder_layer(config, layer, h, mask, rope, kv, cache_index)

    if config.remat_policy != "none":
        block = jax.checkpoint(block, policy=_REMAT[config.remat_policy])

    layers = params["layers"]
    new_k: Any = None
    new_v: Any = None
    if isinstance(layers, (tuple, list)):  # decode layout: per-layer weights
        keys, values = [], []
        for i, layer in enumerate(layers):
            h, kv = block(h, layer, None if cache is None else cache.layer(i))
            if kv is not None:
                keys.append(kv[0])
                values.append(kv[1])
        if cache is not None:
            new_k, new_v = _like(cache.k, keys), _like(cache.v, values)
    elif config.scan_layers and cache is not None:
        # The stacked cache rides in the scan carry and each layer's slab is written back at
        # its index, so XLA updates one buffer in place; as scan input + output it would be
        # held three times in a decode step (the loop carry, the scan's xs and its ys).
        def cached_step(carry: Any, xs: Any) -> tuple[Any, None]:
            h, ks, vs = carry
            layer, i, prefix = xs  # prefix: this layer's shared (keys, values), or None
            kv = (ks[i], vs[i]) if prefix is None else (ks[i], vs[i], *prefix,
                                                        cache.prefix_valid)
            h, (k, v) = block(h, layer, kv)
            return (h, jax.lax.dynamic_update_index_in_dim(ks, k, i, 0),
                    jax.lax.dynamic_update_index_in_dim(vs, v, i, 0)), None
        shared = (None if not cache.shared
                  else (_stacked(cache.prefix_k), _stacked(cache.prefix_v)))
        (h, ks, vs), _ = jax.lax.scan(cached_step, (h, _stacked(cache.k), _stacked(cache.v)),
                                      (layers, jnp.arange(config.num_layers), shared))
        new_k, new_v = _like(cache.k, ks), _like(cache.v, vs)
    elif config.scan_layers:
        def step(h: jax.Array, layer: Any) -> tuple[jax.Array, None]:
            return block(h, layer, None)[0], None
        h, _ = jax.lax.scan(step, h, layers)
    else:
        keys, values = [], []
        for i in range(config.num_layers):
            layer = jax.tree.map(lambda p: p[i], layers)
            h, kv = block(h, layer, None if cache is None else cache.layer(i))
            if kv is not None:
                keys.append(kv[0])
                values.append(kv[1])
        if cache is not None:
            new_k, new_v = _like(cache.k, keys), _like(cache.v, values)

    h = rms_norm(h, params["final_norm"], config.rms_norm_eps)
    new_cache = None
    if cache is not None:
        new_cache = dataclasses.replace(cache, k=new_k, v=new_v, valid=valid,
                                        index=cache.index + input_ids.shape[1]).constrained()
    if return_hidden:
        return h, new_cache
    return lm_head(params, config, h), new_cache


def _stacked(x: Any) -> jax.Array:
    return jnp.stack(x) if isinstance(x, (tuple, list)) else x


def _like(template: Any, layers: Any) -> Any:
    """Per-layer arrays (a list, or a stacked array from scan) in the layout of `template`."""
    if isinstance(template, (tuple, list)):
        return tuple(layers)  # a list, or a stacked array split along its layer axis
    return jnp.stack(layers) if isinstance(layers, (tuple, list)) else layers


def lm_head(params: Params, config: ModelConfig, hidden: jax.Array) -> jax.Array:
    """Vocabulary logits `[..., vocab]` of final hidden states, accumulated in float32."""
    if config.tie_word_embeddings:
        w = params["embed"].astype(hidden.dtype)
        logits = jnp.einsum("...e,ve->...v", hidden, w, preferred_element_type=jnp.float32)
    else:
        w = params["lm_head"].astype(hidden.dtype)
        logits = jnp.einsum("...e,ev->...v", hidden, w, preferred_element_type=jnp.float32)
    return constrain(logits, ("batch", "length", "act_vocab")) if logits.ndim == 3 else logits
