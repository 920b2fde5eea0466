"""The train state: everything a step changes, as one pytree that checkpoints and shards whole.

Parameters and optimizer moments are kept in `param_dtype` (float32 master weights); the model
casts them to its compute dtype inside the forward pass. There is no RNG in the state: the only
randomness after initialization is sampling, whose seed is a function of (config seed, step,
round, process) so a resumed run draws the same samples without restoring a key.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxreason import parallel
from jaxreason.model import llama
from jaxreason.model.config import ModelConfig
from jaxreason.model.model import param_shardings
from jaxreason.train.trainable import trainable


@dataclasses.dataclass(frozen=True)
class ParamTree:
    """What a run trains: the shapes and logical axes of every parameter (the same tree) and
    a random initializer `init(config, rng)`. The language model by default; methods that
    train another tree (a reward model: backbone + scalar head, `model/value_head.py`) pass
    theirs, and the state, its shardings and its restore target follow it."""

    shapes: Callable[[ModelConfig], Any] = llama.param_shapes
    logical_axes: Callable[[ModelConfig], Any] = llama.param_logical_axes
    init: Callable[[ModelConfig, jax.Array], Any] = llama.init_params
    # the algorithm's own step-to-step state beside the parameters, or None: a function
    # returning its step-0 value, a dict of scalars (PPO's adaptive KL coefficient). It is
    # replicated, checkpointed with the state and changed only by the algorithm's pre-step.
    extra: Callable[[], dict[str, jax.Array]] | None = None


LANGUAGE_MODEL = ParamTree()


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class TrainState:
    """step: int32 scalar (algorithm steps done; one optimizer update each unless the
    algorithm makes several per step); params; opt_state; extra: the algorithm's own state
    (`ParamTree.extra`), None for most."""

    step: jax.Array
    params: llama.Params
    opt_state: optax.OptState
    extra: Any = None

    def as_dict(self) -> dict[str, Any]:
        """The plain-dict form Orbax saves (field names as keys; no `extra` key when there is
        none, so such checkpoints are as before)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) is not None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainState":
        return cls(**d)


def abstract_params(config: ModelConfig, tree: ParamTree = LANGUAGE_MODEL) -> llama.Params:
    """Shapes and dtypes of `tree.init`'s parameters (traced, nothing is allocated): mostly
    `param_dtype`, but a LoRA model's frozen base is in the compute dtype or quantized."""
    return jax.eval_shape(lambda key: tree.init(config, key), jax.random.key(0))


def state_shardings(config: ModelConfig, optimizer: optax.GradientTransformation,
                    mesh: Mesh, tree: ParamTree = LANGUAGE_MODEL) -> TrainState:
    """NamedShardings of every leaf: optimizer moments follow their parameter, the rest
    (step, counters) is replicated. The optimizer state covers only the trainable
    parameters (`train/trainable.py`: a LoRA model's adapters)."""
    replicated = NamedSharding(mesh, PartitionSpec())
    if tree == LANGUAGE_MODEL:
        params_sh = param_shardings(config, mesh)
    else:
        params_sh = parallel.tree_shardings(tree.logical_axes(config),
                                            abstract_params(config, tree), mesh)
    opt_abstract = jax.eval_shape(optimizer.init, trainable(abstract_params(config, tree)))
    opt_sh = optax.tree_map_params(optimizer, lambda _, sharding: sharding, opt_abstract,
                                   trainable(params_sh), transform_non_params=lambda _: replicated)
    extra = None if tree.extra is None else jax.tree.map(lambda _: replicated, tree.extra())
    return TrainState(step=replicated, params=params_sh, opt_state=opt_sh, extra=extra)


def abstract_state(config: ModelConfig, optimizer: optax.GradientTransformation,
                   mesh: Mesh, tree: ParamTree = LANGUAGE_MODEL) -> TrainState:
    """ShapeDtypeStructs with shardings: the restore target for Orbax (so optax state comes
    back as its own types, placed on the mesh) and a free way to size the state."""
    shapes = jax.eval_shape(lambda p: new_state(p, optimizer, tree),
                            abstract_params(config, tree))
    return jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                        shapes, state_shardings(config, optimizer, mesh, tree))


def new_state(params: llama.Params, optimizer: optax.GradientTransformation,
              tree: ParamTree = LANGUAGE_MODEL) -> TrainState:
    """Step 0 around given parameters (call under jit with out_shardings)."""
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      opt_state=optimizer.init(trainable(params)),
                      extra=None if tree.extra is None else tree.extra())


def init_state(config: ModelConfig, optimizer: optax.GradientTransformation, mesh: Mesh, *,
               seed: int, params: llama.Params | None = None,
               tree: ParamTree = LANGUAGE_MODEL) -> TrainState:
    """A sharded step-0 state: around `params` (donated; e.g. from `load_pretrained`) or, with
    none given, around random parameters (`tree.init`) initialized directly in their sharded
    layout."""
    shardings = state_shardings(config, optimizer, mesh, tree)
    if params is not None:
        make = jax.jit(lambda p: new_state(p, optimizer, tree), out_shardings=shardings,
                       donate_argnums=0)
        return make(params)
    make = jax.jit(lambda key: new_state(tree.init(config, key), optimizer, tree),
                   out_shardings=shardings)
    return make(_init_rng(seed))


def _init_rng(seed: int) -> jax.Array:
    return jax.random.fold_in(jax.random.key(seed), 1)


def random_params(config: ModelConfig, mesh: Mesh, *, seed: int,
                  tree: ParamTree = LANGUAGE_MODEL) -> llama.Params:
    """The random parameters `init_state` starts from when given none (same seed, same
    values), placed on the mesh: a resumed LoRA run rebuilds its frozen base from them."""
    shardings = parallel.tree_shardings(tree.logical_axes(config), abstract_params(config, tree),
                                        mesh)
    return jax.jit(lambda key: tree.init(config, key), out_shardings=shardings)(_init_rng(seed))
