"""LoRA: low-rank adapters on the decoder's projections, as ordinary model parameters.

A projection `y = x W` with adapters becomes `y = x W + (alpha / rank) (x A) B` with `A [in,
rank]` and `B [rank, out]` (Hu et al. 2021); `B` starts at zero, so at step 0 the model is
exactly its base. The adapters live in the parameter tree beside the base weights, under
`params["layers"]["lora"][target] = {"a": [layers, *in, rank], "b": [layers, rank, *out]}`,
stacked over layers like every other layer weight, so the one decoder layer (`llama.py`)
runs them inside its own projections in training, prefill and decode alike, with no merge.
Their logical axes are the base weight's input axes then `lora_rank` for `A`, and `lora_rank`
then the output axes for `B`, so they follow the same mesh rules (`lora_rank` takes `fsdp`
where the other axes leave it free).

This module only describes and transforms the tree (shapes, axes, initialization, merging,
the split into base and adapters); which parameters train is the train side's business
(`train/state.py`). With `quantization` set, the frozen base projections are stored as
`quantize.QuantizedWeight` (QLoRA) and dequantized where they are used.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp

from jaxreason.model import quantize

if TYPE_CHECKING:
    from jaxreason.model.config import ModelConfig

Params = dict[str, Any]

# Projection -> (logical input axes, logical output axes) of its weight `[*in, *out]`.
PROJECTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "q": (("embed",), ("heads", "head_dim")),
    "k": (("embed",), ("kv_heads", "head_dim")),
    "v": (("embed",), ("kv_heads", "head_dim")),
    "o": (("heads", "head_dim"), ("embed",)),
    "gate": (("embed",), ("mlp",)),
    "up": (("embed",), ("mlp",)),
    "down": (("mlp",), ("embed",)),
}
# Hugging Face module names of the projections (PEFT's `target_modules`).
HF_MODULES = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
              "o": "self_attn.o_proj", "gate": "mlp.gate_proj", "up": "mlp.up_proj",
              "down": "mlp.down_proj"}


@dataclasses.dataclass(frozen=True)
class LoraConfig:
    """Adapters of rank `rank` scaled by `alpha / rank` on the projections in `targets`
    (names of PROJECTIONS). `quantization` stores the frozen base projections as "int8" or
    "nf4" (QLoRA) in blocks of `quantization_block` along their last axis; "none" keeps
    them in the compute dtype (frozen weights need no float32 master copy)."""

    rank: int = 8
    alpha: float = 16.0
    targets: tuple[str, ...] = ("q", "k", "v", "o", "gate", "up", "down")
    quantization: str = "none"
    quantization_block: int = 64

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ValueError(f"lora.rank: must be >= 1, got {self.rank}")
        unknown = [t for t in self.targets if t not in PROJECTIONS]
        if unknown or not self.targets or len(set(self.targets)) != len(self.targets):
            raise ValueError(f"lora.targets: {list(self.targets)} must be distinct names from "
                             f"{list(PROJECTIONS)}")
        if self.quantization not in quantize.FORMATS:
            raise ValueError(f"lora.quantization: {self.quantization!r} is not one of "
                             f"{quantize.FORMATS}")
        if self.quantization_block < 1:
            raise ValueError(f"lora.quantization_block: must be >= 1, got "
                             f"{self.quantization_block}")

    @property
    def scale(self) -> float:
        return self.alpha / self.rank


def parse_targets(text: str) -> tuple[str, ...]:
    """"q,k,v,o" (or "all") -> ("q", "k", "v", "o"), in PROJECTIONS' order."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if names == ["all"]:
        return tuple(PROJECTIONS)
    return tuple(n for n in PROJECTIONS if n in names) + tuple(
        n for n in names if n not in PROJECTIONS)


def _dims(config: ModelConfig) -> dict[str, int]:
    return {"embed": config.hidden_size, "heads": config.num_heads,
            "kv_heads": config.num_kv_heads, "head_dim": config.head_dim,
            "mlp": config.intermediate_size}


def _in_out(config: ModelConfig, target: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    dims = _dims(config)
    axes_in, axes_out = PROJECTIONS[target]
    return tuple(dims[a] for a in axes_in), tuple(dims[a] for a in axes_out)


def adapter_shapes(config: ModelConfig) -> Params:
    """{target: {"a": (layers, *in, rank), "b": (layers, rank, *out)}}."""
    lora, n = config.lora, config.num_layers
    out = {}
    for t in lora.targets:
        d_in, d_out = _in_out(config, t)
        out[t] = {"a": (n, *d_in, lora.rank), "b": (n, lora.rank, *d_out)}
    return out


def adapter_logical_axes(config: ModelConfig) -> Params:
    """The base weight's input axes (A) and output axes (B), plus `lora_rank`, which takes
    `fsdp` where the weight's own axes leave it free (A of o / down, B of q, k, v, gate, up),
    so every adapter and its Adam moments are split over the FSDP devices."""
    return {t: {"a": ("layers", *PROJECTIONS[t][0], "lora_rank"),
                "b": ("layers", "lora_rank", *PROJECTIONS[t][1])} for t in config.lora.targets}


def num_adapter_params(config: ModelConfig) -> int:
    """Trainable parameters: layers x rank x (fan-in + fan-out), summed over targets."""
    total = 0
    for t in config.lora.targets:
        d_in, d_out = _in_out(config, t)
        total += config.num_layers * config.lora.rank * (math.prod(d_in) + math.prod(d_out))
    return total


def quantized_layer_shapes(config: ModelConfig, shapes: Params) -> Params:
    """Layer shapes with every projection weight replaced by its (codes, scales) shapes."""
    lora = config.lora
    out = dict(shapes)
    for name in PROJECTIONS:
        codes, scales = quantize.quantized_shapes(shapes[name], lora.quantization,
                                                  lora.quantization_block)
        out[name] = quantize.QuantizedWeight(codes=codes, scales=scales, fmt=lora.quantization)
    return out


def quantized_layer_axes(config: ModelConfig, axes: Params) -> Params:
    """Codes and scales keep the weight's logical axes (blocks tile its last axis)."""
    return {k: (quantize.QuantizedWeight(codes=v, scales=v, fmt=config.lora.quantization)
                if k in PROJECTIONS else v) for k, v in axes.items()}


def init_adapters(config: ModelConfig, rng: jax.Array) -> Params:
    """A ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PEFT's kaiming-uniform with a = sqrt(5)), B = 0,
    in `param_dtype`."""
    dtype = jnp.dtype(config.param_dtype)
    shapes = adapter_shapes(config)
    out = {}
    for key, t in zip(jax.random.split(rng, len(shapes)), shapes):
        fan_in = math.prod(_in_out(config, t)[0])
        bound = 1.0 / math.sqrt(fan_in)
        a = jax.random.uniform(key, shapes[t]["a"], jnp.float32, -bound, bound)
        out[t] = {"a": a.astype(dtype), "b": jnp.zeros(shapes[t]["b"], dtype)}
    return out


def attach(base: Params, config: ModelConfig, rng: jax.Array) -> Params:
    """The parameters of a LoRA model from its base model's: base weights in the compute dtype
    (quantized when configured) and fresh adapters. Call under jit with out_shardings."""
    dtype = jnp.dtype(config.dtype)
    params = jax.tree.map(lambda p: p.astype(dtype), base)
    layers = dict(params["layers"])
    if config.lora.quantization != "none":
        for name in PROJECTIONS:
            layers[name] = quantize.quantize(layers[name], config.lora.quantization,
                                             config.lora.quantization_block)
    layers["lora"] = init_adapters(config, rng)
    return {**params, "layers": layers}


def has_adapters(params: Params) -> bool:
    return isinstance(params, dict) and "lora" in params.get("layers", {})


def split(params: Params) -> tuple[Params, Params | None]:
    """(the base parameters, the adapters) of a LoRA model; (params, None) without adapters."""
    if not has_adapters(params):
        return params, None
    layers = {k: v for k, v in params["layers"].items() if k != "lora"}
    return {**params, "layers": layers}, params["layers"]["lora"]


def join(base: Params, adapters: Params | None) -> Params:
    """Inverse of `split`."""
    if adapters is None:
        return base
    return {**base, "layers": {**base["layers"], "lora": adapters}}


def delta(x: jax.Array, adapter: Params, lora: LoraConfig) -> jax.Array:
    """`(alpha / rank) (x A) B` for inputs `x [..., *in]`: the adapter's addition to the
    projection's output `[..., *out]`, computed in x's dtype."""
    a, b = adapter["a"], adapter["b"]
    down = jnp.tensordot(x, a.astype(x.dtype), axes=a.ndim - 1)  # [..., rank]
    return jnp.tensordot(down * jnp.asarray(lora.scale, x.dtype), b.astype(x.dtype), axes=1)


def dense_weight(w: Any, dtype: jnp.dtype | str) -> jax.Array:
    """A weight as a plain array in `dtype` (dequantized if stored quantized)."""
    if isinstance(w, quantize.QuantizedWeight):
        return quantize.dequantize(w, dtype)
    return w.astype(dtype)


def merged(params: Params, config: ModelConfig) -> Params:
    """The plain model equal to base + adapters: `W + (alpha / rank) A B` for every target,
    every weight in `param_dtype`, quantized bases dequantized. For the config of the result
    use `config.replace(lora=None)`."""
    dtype = jnp.dtype(config.param_dtype)
    base, adapters = split(params)
    layers = {k: dense_weight(v, jnp.float32) for k, v in base["layers"].items()}
    for t, adapter in (adapters or {}).items():
        a = adapter["a"].astype(jnp.float32)
        b = adapter["b"].astype(jnp.float32)
        product = jax.vmap(lambda a, b: jnp.tensordot(a, b, axes=1))(a, b)
        layers[t] = layers[t] + config.lora.scale * product
    out = {k: v.astype(dtype) for k, v in base.items() if k != "layers"}
    out["layers"] = {k: v.astype(dtype) for k, v in layers.items()}
    return out
