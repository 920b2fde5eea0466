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

n samples of one prompt can instead share its prefill (`shared_prefix`): the prompt's keys and
values are kept once per prompt (`prefix_k`, `prefix_v`, `prefix_valid`, `[prompts, ...]`)
and only the generated tokens per row (`k`, `v`, `valid`, rows = prompts x n, row r belongs
to prompt r // n). A decode step then reads each prompt's keys once for its n rows, as one
matmul with n times the queries, instead of n copies: on long prompts most of the bytes a
step reads.
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
    scalar, the next slot to write. prefix_k / prefix_v / prefix_valid: a shared prefix (see
    the module docstring) in the same layout with `prompts` rows, or None."""

    k: Any
    v: Any
    valid: jax.Array
    index: jax.Array
    prefix_k: Any = None
    prefix_v: Any = None
    prefix_valid: jax.Array | None = None

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

    @property
    def shared(self) -> bool:
        """Whether rows share a prompt prefix (`shared_prefix`)."""
        return self.prefix_valid is not None

    def layer(self, i: int) -> tuple[jax.Array, ...]:
        """Layer i's (keys, values), then its prefix keys, values and valid mask if shared."""
        if self.shared:
            return self.k[i], self.v[i], self.prefix_k[i], self.prefix_v[i], self.prefix_valid
        return self.k[i], self.v[i]

    def shared_prefix(self, n: int, new_tokens: int) -> "KVCache":
        """This (prefilled) cache as the shared prefix of `n` rows per row, with an empty
        per-row cache of `new_tokens` slots for what they generate."""
        if self.shared:
            raise ValueError("the cache already has a shared prefix")
        shape = (self.batch * n, new_tokens)

        def empty(x: jax.Array) -> jax.Array:  # [(layers,) rows, kv_heads, slots, head_dim]
            lead = x.shape[:-4]
            return jnp.zeros(lead + (shape[0], x.shape[-3], new_tokens, x.shape[-1]), x.dtype)
        if self.per_layer:
            k, v = tuple(empty(x) for x in self.k), tuple(empty(x) for x in self.v)
        else:
            k, v = empty(self.k), empty(self.v)
        return KVCache(k=k, v=v, valid=jnp.zeros(shape, bool), index=jnp.zeros((), jnp.int32),
                       prefix_k=self.k, prefix_v=self.v,
                       prefix_valid=self.valid).constrained()

    def _map_rows(self, fn: Any) -> "KVCache":
        """Apply `fn` to the batch axis of every array (axis 0 of per-layer / valid arrays)."""
        if self.shared:
            raise ValueError("rows of a cache with a shared prefix cannot be moved")
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
        if self.shared:
            raise ValueError("a cache with a shared prefix cannot be padded")

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
        def kv(x: Any) -> Any:
            if x is None:
                return None
            if _per_layer(x):
                return tuple(constrain(y, _KV_AXES) for y in x)
            return constrain(x, ("layers",) + _KV_AXES)

        prefix_valid = self.prefix_valid
        if prefix_valid is not None:
            prefix_valid = constrain(prefix_valid, ("batch", "cache_length"))
        return KVCache(k=kv(self.k), v=kv(self.v),
                       valid=constrain(self.valid, ("batch", "cache_length")), index=self.index,
                       prefix_k=kv(self.prefix_k), prefix_v=kv(self.prefix_v),
                       prefix_valid=prefix_valid)


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


def sampling_cache_bytes(config: ModelConfig, prompts: int, n: int, prompt_length: int,
                         new_tokens: int, mesh: Mesh | None = None,
                         rules: LogicalRules | None = None) -> int:
    """Per-device bytes of the caches of one sampling call: `prompts` rows of
    `prompt_length + new_tokens` slots when n = 1; with n > 1 the prompts' shared prefix
    (`prompt_length` slots each) plus `prompts * n` rows of `new_tokens` slots
    (`KVCache.shared_prefix`, what the sampler builds)."""
    if n == 1:
        return cache_bytes_per_device(config, prompts, prompt_length + new_tokens, mesh, rules)
    return (cache_bytes_per_device(config, prompts, prompt_length, mesh, rules)
            + cache_bytes_per_device(config, prompts * n, new_tokens, mesh, rules))
