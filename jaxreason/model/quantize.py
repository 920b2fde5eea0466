"""Block-wise int8 and NF4 storage of frozen weights (QLoRA), dequantized where they are used.

A LoRA run never updates its base weights, so they need neither fp32 master copies nor
gradients: stored as 8-bit integers (int8, absmax per block) or 4-bit NormalFloat codes (NF4,
the QLoRA paper's 16 quantiles of N(0, 1) scaled to [-1, 1], two codes per byte), a 70B base
takes 70 GB or 35 GB instead of 140 GB in bf16. Blocks run along a weight's last axis (the
output axis of every projection except `down` and `o`, whose last axis is `embed`), so a
block never straddles a tensor-parallel or layer boundary and the codes keep the weight's
logical axes.

`QuantizedWeight` is a pytree (codes and scales are its leaves; the format is static), so a
quantized weight sits in the parameter tree where the float weight was; `llama._dense` calls
`dequantize` on it just before its matmul, one layer at a time.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

FORMATS = ("none", "int8", "nf4")

# The 16 NF4 levels (QLoRA, Dettmers et al. 2023, appendix E; bitsandbytes' table).
NF4_LEVELS = np.array([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0], np.float32)


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class QuantizedWeight:
    """A weight `[..., n]` as `codes` (int8 `[..., n]`, or uint8 `[..., n / 2]` holding two NF4
    codes per byte, low nibble first) and float32 `scales [..., n / block]` (each block's
    absolute maximum). `fmt` is "int8" or "nf4"."""

    codes: jax.Array
    scales: jax.Array
    fmt: str = dataclasses.field(metadata=dict(static=True))

    @property
    def shape(self) -> tuple[int, ...]:
        last = self.codes.shape[-1] * (2 if self.fmt == "nf4" else 1)
        return (*self.codes.shape[:-1], last)


def block_size(last_dim: int, requested: int) -> int:
    """The largest divisor of `last_dim` that is at most `requested` (blocks must tile the
    axis exactly; 64 for every real model's projection)."""
    for size in range(min(requested, last_dim), 0, -1):
        if last_dim % size == 0:
            return size
    return 1


def quantized_shapes(shape: tuple[int, ...], fmt: str, block: int
                     ) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Shapes of (codes, scales) of a weight of `shape`."""
    *lead, n = shape
    scales = (*lead, n // block_size(n, block))
    codes = (*lead, n // 2) if fmt == "nf4" else tuple(shape)
    return codes, scales


def quantize(w: jax.Array, fmt: str, block: int = 64) -> QuantizedWeight:
    """`w [..., n]` in `fmt` with absmax blocks of `block_size(n, block)` along the last axis."""
    if fmt not in ("int8", "nf4"):
        raise ValueError(f"quantization format {fmt!r} is not one of ('int8', 'nf4')")
    *lead, n = w.shape
    size = block_size(n, block)
    if fmt == "nf4" and n % 2:
        raise ValueError(f"nf4 packs two codes per byte: the last axis ({n}) must be even")
    blocks = w.astype(jnp.float32).reshape(*lead, n // size, size)
    absmax = jnp.max(jnp.abs(blocks), axis=-1)
    normalized = blocks / jnp.where(absmax > 0, absmax, 1.0)[..., None]
    if fmt == "int8":
        codes = jnp.round(normalized * 127).astype(jnp.int8).reshape(w.shape)
    else:
        levels = jnp.asarray(NF4_LEVELS)
        nearest = jnp.argmin(jnp.abs(normalized[..., None] - levels), axis=-1)
        nearest = nearest.astype(jnp.uint8).reshape(*lead, n // 2, 2)
        codes = nearest[..., 0] | (nearest[..., 1] << 4)
    return QuantizedWeight(codes=codes, scales=absmax, fmt=fmt)


def dequantize(q: QuantizedWeight, dtype: jnp.dtype | str) -> jax.Array:
    """The weight in `dtype`, block scales applied in float32."""
    *lead, n = q.shape
    size = n // q.scales.shape[-1]
    if q.fmt == "int8":
        values = q.codes.astype(jnp.float32) * (1.0 / 127)
    else:
        low, high = q.codes & 0xF, q.codes >> 4
        index = jnp.stack([low, high], axis=-1).reshape(*lead, n)
        values = jnp.asarray(NF4_LEVELS)[index]
    values = values.reshape(*lead, n // size, size) * q.scales[..., None]
    return values.reshape(*lead, n).astype(dtype)


def max_error(fmt: str) -> float:
    """Bound on |w - dequantize(quantize(w))| as a fraction of the block's absmax: half a
    rounding step (int8: 0.5 / 127; nf4: half the widest gap between adjacent levels)."""
    if fmt == "int8":
        return 0.5 / 127
    return float(np.max(np.diff(NF4_LEVELS))) / 2
