"""The train state: everything a step changes, as one pytree that checkpoints and shards whole.

Parameters and optimizer moments are kept in `param_dtype` (float32 master weights); the model
casts them to its compute dtype inside the forward pass. There is no RNG in the state: the only
randomness after initialization is sampling, whose seed is a function of (config seed, step,
round, process) so a resumed run draws the same samples without restoring a key.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxreason.model import llama
from jaxreason.model.config import ModelConfig
from jaxreason.model.model import param_shardings


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class TrainState:
    """step: int32 scalar (algorithm steps done; one optimizer update each unless the
    algorithm makes several per step); params; opt_state."""

    step: jax.Array
    params: llama.Params
    opt_state: optax.OptState

    def as_dict(self) -> dict[str, Any]:
        """The plain-dict form Orbax saves (field names as keys)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainState":
        return cls(**d)


def abstract_params(config: ModelConfig) -> llama.Params:
    dtype = jnp.dtype(config.param_dtype)
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s, dtype), llama.param_shapes(config),
                        is_leaf=lambda s: isinstance(s, tuple))


def state_shardings(config: ModelConfig, optimizer: optax.GradientTransformation,
                    mesh: Mesh) -> TrainState:
    """NamedShardings of every leaf: optimizer moments follow their parameter, the rest
    (step, counters) is replicated."""
    replicated = NamedSharding(mesh, PartitionSpec())
    params_sh = param_shardings(config, mesh)
    opt_abstract = jax.eval_shape(optimizer.init, abstract_params(config))
    opt_sh = optax.tree_map_params(optimizer, lambda _, sharding: sharding, opt_abstract,
                                   params_sh, transform_non_params=lambda _: replicated)
    return TrainState(step=replicated, params=params_sh, opt_state=opt_sh)


def abstract_state(config: ModelConfig, optimizer: optax.GradientTransformation,
                   mesh: Mesh) -> TrainState:
    """ShapeDtypeStructs with shardings: the restore target for Orbax (so optax state comes
    back as its own types, placed on the mesh) and a free way to size the state."""
    shapes = jax.eval_shape(lambda p: new_state(p, optimizer), abstract_params(config))
    return jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                        shapes, state_shardings(config, optimizer, mesh))


def new_state(params: llama.Params, optimizer: optax.GradientTransformation) -> TrainState:
    """Step 0 around given parameters (call under jit with out_shardings)."""
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      opt_state=optimizer.init(params))


def init_state(config: ModelConfig, optimizer: optax.GradientTransformation, mesh: Mesh, *,
               seed: int, params: llama.Params | None = None) -> TrainState:
    """A sharded step-0 state: around `params` (donated; e.g. from `load_pretrained`) or, with
    none given, around random parameters initialized directly in their sharded layout."""
    shardings = state_shardings(config, optimizer, mesh)
    if params is not None:
        make = jax.jit(lambda p: new_state(p, optimizer), out_shardings=shardings,
                       donate_argnums=0)
        return make(params)
    init_rng = jax.random.fold_in(jax.random.key(seed), 1)
    make = jax.jit(lambda key: new_state(llama.init_params(config, key), optimizer),
                   out_shardings=shardings)
    return make(init_rng)
