"""Device mesh, logical-axis sharding rules and multi-host start.

Parameters and activations are annotated with *logical* axis names ("embed", "heads", "batch"
...). One table of rules maps each logical name to mesh axes, so changing the parallelism is a
config edit: FSDP shards "embed" over `fsdp`, tensor parallelism shards heads / MLP / vocab over
`tensor`, the batch goes over (`data`, `fsdp`). A dimension that a mesh axis does not divide is
left replicated on that axis rather than failing, so tiny test models run on any mesh.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from typing import Any, Iterator, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

MESH_AXES = ("data", "fsdp", "tensor")

LogicalRules = tuple[tuple[str, str | tuple[str, ...] | None], ...]

DEFAULT_RULES: LogicalRules = (
    # parameters
    ("vocab", "tensor"),
    ("embed", "fsdp"),
    ("heads", "tensor"),
    ("kv_heads", "tensor"),
    ("mlp", "tensor"),
    ("head_dim", None),
    ("lora_rank", "fsdp"),  # LoRA adapters: the rank axis, where the weight's own axes are not
    ("layers", None),
    ("norm", None),
    # activations
    ("batch", ("data", "fsdp")),
    ("length", None),
    ("act_embed", None),
    ("act_heads", "tensor"),
    ("act_kv_heads", "tensor"),
    ("act_mlp", "tensor"),
    ("act_vocab", "tensor"),
    ("cache_length", None),
)

_RULES: contextvars.ContextVar[LogicalRules] = contextvars.ContextVar(
    "jaxreason_logical_rules", default=DEFAULT_RULES)

log = logging.getLogger(__name__)


def make_mesh(data: int = 1, fsdp: int = -1, tensor: int = 1,
              devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A (`data`, `fsdp`, `tensor`) mesh over `devices` (all devices by default).

    One size may be -1, meaning "all remaining devices". Axes are `Auto` so that jit propagates
    shardings from annotated inputs (jax's `make_mesh` default is Explicit).
    """
    devices = list(devices) if devices is not None else jax.devices()
    sizes = [data, fsdp, tensor]
    if sizes.count(-1) > 1:
        raise ValueError(f"mesh: at most one of data/fsdp/tensor may be -1, got {sizes}")
    known = int(np.prod([s for s in sizes if s != -1]))
    if -1 in sizes:
        if len(devices) % known:
            raise ValueError(f"mesh: {len(devices)} devices are not divisible by {known} "
                             f"(data={data}, fsdp={fsdp}, tensor={tensor})")
        sizes[sizes.index(-1)] = len(devices) // known
    if int(np.prod(sizes)) != len(devices):
        raise ValueError(f"mesh: data*fsdp*tensor = {int(np.prod(sizes))} but there are "
                         f"{len(devices)} devices (data={sizes[0]}, fsdp={sizes[1]}, "
                         f"tensor={sizes[2]})")
    return jax.make_mesh(tuple(sizes), MESH_AXES, axis_types=(AxisType.Auto,) * 3,
                         devices=devices)


def mesh_from_config(cfg: Mapping[str, Any] | Any) -> Mesh:
    """A mesh from a config section with `data`, `fsdp`, `tensor` fields."""
    get = cfg.get if isinstance(cfg, Mapping) else lambda k, d: getattr(cfg, k, d)
    return make_mesh(int(get("data", 1)), int(get("fsdp", -1)), int(get("tensor", 1)))


@contextlib.contextmanager
def logical_rules(rules: LogicalRules) -> Iterator[None]:
    """Use `rules` for activation constraints traced inside this block."""
    token = _RULES.set(tuple(rules))
    try:
        yield
    finally:
        _RULES.reset(token)


def logical_to_spec(names: Sequence[str | None], shape: Sequence[int] | None = None,
                    mesh: Mesh | jax.sharding.AbstractMesh | None = None,
                    rules: LogicalRules | None = None) -> PartitionSpec:
    """PartitionSpec for logical axis `names`.

    With `shape` and `mesh`, mesh axes that do not divide a dimension (or that an earlier
    dimension already uses) are dropped, i.e. that dimension is replicated over them.
    """
    table = dict(rules if rules is not None else _RULES.get())
    used: set[str] = set()
    spec = []
    for dim, name in enumerate(names):
        if name is None:
            spec.append(None)
            continue
        if name not in table:
            raise KeyError(f"logical axis {name!r} has no sharding rule; known: {sorted(table)}")
        target = table[name]
        axes = (target,) if isinstance(target, str) else tuple(target or ())
        kept = []
        size = 1
        for axis in axes:
            if axis in used:
                continue
            if mesh is not None:
                axis_size = dict(zip(mesh.axis_names, mesh.axis_sizes))[axis]
                if shape is not None and shape[dim] % (size * axis_size):
                    continue
                size *= axis_size
            kept.append(axis)
        used.update(kept)
        spec.append(None if not kept else kept[0] if len(kept) == 1 else tuple(kept))
    return PartitionSpec(*spec)


def logical_sharding(names: Sequence[str | None], shape: Sequence[int], mesh: Mesh,
                     rules: LogicalRules | None = None) -> NamedSharding:
    return NamedSharding(mesh, logical_to_spec(names, shape, mesh, rules))


def tree_shardings(logical_tree: Any, shape_tree: Any, mesh: Mesh,
                   rules: LogicalRules | None = None) -> Any:
    """NamedShardings for a pytree of arrays (or ShapeDtypeStructs) given their logical axes."""
    return jax.tree.map(lambda names, x: logical_sharding(names, x.shape, mesh, rules),
                        logical_tree, shape_tree, is_leaf=lambda n: isinstance(n, tuple))


def constrain(x: jax.Array, names: Sequence[str | None]) -> jax.Array:
    """Sharding constraint by logical names; a no-op outside a `jax.set_mesh` context."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty:
        return x
    return jax.lax.with_sharding_constraint(x, logical_to_spec(names, x.shape, mesh))


def initialize_distributed(coordinator_address: str | None = None,
                           num_processes: int | None = None, process_id: int | None = None,
                           cpu_collectives: str | None = None) -> None:
    """Start multi-host JAX. On TPU pods and SLURM/GPU clusters the arguments are discovered.

    `cpu_collectives="gloo"` enables cross-process collectives for CPU-only runs (tests).
    """
    if cpu_collectives:
        jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)
    log.info("jax.distributed: process %d of %d, %d local / %d global devices",
             jax.process_index(), jax.process_count(), jax.local_device_count(),
             jax.device_count())


def host_local_to_global(tree: Any, mesh: Mesh, names: Sequence[str | None] = ("batch",)) -> Any:
    """Assemble per-process numpy batches into global arrays sharded over the batch axes.

    Each process passes its own rows; the global batch is their concatenation in process order.
    """
    def one(x: Any) -> jax.Array:
        x = np.asarray(x)
        full = tuple(names) + (None,) * (x.ndim - len(names))
        spec = logical_to_spec(full[: x.ndim], None, mesh)
        return jax.make_array_from_process_local_data(NamedSharding(mesh, spec), x)
    return jax.tree.map(one, tree)


def to_host(tree: Any) -> Any:
    """Fully replicated numpy copies of (possibly multi-host sharded) arrays."""
    from jax.experimental import multihost_utils

    def one(x: Any) -> np.ndarray:
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(x)
    return jax.tree.map(one, tree)


def dtype_of(name: str) -> jnp.dtype:
    return jnp.dtype(name)
