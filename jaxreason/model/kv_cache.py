"""The KV cache of incremental decoding: one type for prefill, decode, beams and search.

Per layer, keys and values are `[batch, kv_heads, length, head_dim]`: the order attention's
batched matmuls read, so a decode step never transposes the cache. The layers are held either
stacked (`[layers, batch, kv_heads, length, head_dim]`, what `lax.scan` over layers needs) or
as a tuple of per-layer arrays (what a Python loop over layers wants: each layer's cache is
updated in place, nothing is sliced out of a stacked buffer per token). `valid` marks the slots
holding real tokens; `index` is the next slot to write, the same for every row, so a padded
batch needs no per-row scatter.

Search needs three operations on caches, all here: `repeat` (n samples of one prefill),
`gather` (reorder rows: beams), and `pad` (room for more tokens; extending the cache by more
tokens is a `forward` call with the cache).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding

from jaxreason.model.config import ModelConfig
from jaxreason.parallel import LogicalRules, constrain, logical_to_spec

_KV_AXES = ("batch", "act_kv_heads", "cache_length", None)


def _per_layer(x: Any) -> bool:
    return isinstance(x, (tuple, list))


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class KVCache:
    """k, v: stacked `[layers, batch, kv_heads, max_length, head_dim]`, or a tuple of per-layer
    `[batch, kv_heads, max_length, head_dim]`; valid: `[batch, max_length]` bool; index: int32
    scalar, the next slot to write."""

    k: Any
    v: Any
    valid: jax.Array
    index: jax.Array

    @classmethod
    def create(cls, config: ModelConfig, batch: int, max_length: int, dtype: Any = None, *,
               per_layer: bool = False) -> "KVCache":
        dtype = jnp.dtype(dtype or config.dtype)
        shape = (batch, config.num_kv_heads, max_length, config.head_dim)
        if per_layer:
            k = tuple(jnp.zeros(shape, dtype) for _ in range(config.num_layers))
            v = tuple(jnp.zeros(shape, dtype) for _ in range(config.num_layers))
        else:
            k = jnp.zeros((config.num_layers,) + shape, dtype)
            v = jnp.zeros((config.num_layers,) + shape, dtype)
        return cls(k=k, v=v, valid=jnp.zeros((batch, max_length), bool),
                   index=jnp.zeros((), jnp.int32))

    @property
    def per_layer(self) -> bool:
        return _per_layer(self.k)

    @property
    def batch(self) -> int:
        return int(self.valid.shape[0])

    @property
    def max_length(self) -> int:
        return int(self.valid.shape[1])

    def layer(self, i: int) -> tuple[jax.Array, jax.Array]:
        """Layer i's (keys, values)."""
        return self.k[i], self.v[i]

    def _map_rows(self, fn: Any) -> "KVCache":
        """Apply `fn` to the batch axis of every array (axis 0 of per-layer / valid arrays)."""
        if self.per_layer:
            k, v = tuple(fn(x, 0) for x in self.k), tuple(fn(x, 0) for x in self.v)
        else:
            k, v = fn(self.k, 1), fn(self.v, 1)
        return KVCache(k=k, v=v, valid=fn(self.valid, 0), index=self.index).constrained()

    def repeat(self, n: int) -> "KVCache":
        """Each row repeated n times in place (row r -> rows r*n .. r*n + n - 1): n samples
        share one prefill."""
        if n == 1:
            return self
        return self._map_rows(lambda x, axis: jnp.repeat(x, n, axis=axis))

    def gather(self, rows: jax.Array | Sequence[int]) -> "KVCache":
        """Rows picked (and reordered, or duplicated) by index: `[new_batch]` ints."""
        rows = jnp.asarray(rows, jnp.int32)
        return self._map_rows(lambda x, axis: jnp.take(x, rows, axis=axis))

    def pad(self, max_length: int) -> "KVCache":
        """The same cache with room for `max_length` slots (new slots empty, not valid)."""
        extra = max_length - self.max_length
        if extra < 0:
            raise ValueError(f"cannot shrink a cache of {self.max_length} slots to {max_length}")
        if extra == 0:
            return self

        def grow(x: jax.Array, slot_axis: int) -> jax.Array:
            widths = [(0, 0)] * x.ndim
            widths[slot_axis] = (0, extra)
            return jnp.pad(x, widths)

        if self.per_layer:
            k, v = tuple(grow(x, 2) for x in self.k), tuple(grow(x, 2) for x in self.v)
        else:
            k, v = grow(self.k, 3), grow(self.v, 3)
        return KVCache(k=k, v=v, valid=grow(self.valid, 1), index=self.index).constrained()

    def constrained(self) -> "KVCache":
        """The cache with its logical sharding (rows over the batch axes, kv heads over
        `tensor`) asserted, so loops carrying it keep one layout."""
        if self.per_layer:
            k = tuple(constrain(x, _KV_AXES) for x in self.k)
            v = tuple(constrain(x, _KV_AXES) for x in self.v)
        else:
            k, v = constrain(self.k, ("layers",) + _KV_AXES), constrain(self.v, ("layers",) + _KV_AXES)
        return KVCache(k=k, v=v, valid=constrain(self.valid, ("batch", "cache_length")),
                       index=self.index)


def cache_bytes_per_device(config: ModelConfig, rows: int, max_length: int,
                           mesh: Mesh | None = None, rules: LogicalRules | None = None) -> int:
    """Bytes one device holds of a cache of `rows` x `max_length` slots: keys and values of
    every layer in the compute dtype plus the `valid` mask, split over `mesh` as `constrained`
    lays them out (rows over the batch axes, kv heads over `tensor`, where they divide).
    The sampler sizes its chunks with it and the memory plan reports it."""
    shape = (rows, config.num_kv_heads, max_length, config.head_dim)

    def per_device(names: tuple[Any, ...], full: tuple[int, ...]) -> int:
        if mesh is None:
            return math.prod(full)
        spec = logical_to_spec(names, full, mesh, rules)
        return math.prod(NamedSharding(mesh, spec).shard_shape(full))

    keys = per_device(_KV_AXES, shape) * jnp.dtype(config.dtype).itemsize
    valid = per_device(("batch", "cache_length"), (rows, max_length))
    return 2 * config.num_layers * keys + valid
