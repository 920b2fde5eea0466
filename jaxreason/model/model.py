"""`Model`: a config, its parameters and (optionally) the mesh they live on.

The functional core is `llama.forward(params, config, ...)`; this class only bundles the three
things a user passes around and gives a jitted `model(input_ids)` call. It is a pytree (params
are the leaves; config and mesh are static), so it can cross `jax.jit` boundaries.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from jaxreason import parallel
from jaxreason.model import hf_checkpoint, llama, lora
from jaxreason.model.config import ModelConfig, load_config


@jax.tree_util.register_pytree_node_class
class Model:
    """Callable language model: `model(input_ids) -> logits [batch, length, vocab]`."""

    def __init__(self, config: ModelConfig, params: llama.Params, mesh: Mesh | None = None,
                 rules: parallel.LogicalRules | None = None) -> None:
        self.config = config
        self.params = params
        self.mesh = mesh
        self.rules = tuple(rules) if rules is not None else parallel.DEFAULT_RULES

    def tree_flatten(self) -> tuple[tuple[Any], tuple[Any, ...]]:
        return (self.params,), (self.config, self.mesh, self.rules)

    @classmethod
    def tree_unflatten(cls, aux: tuple[Any, ...], children: tuple[Any]) -> "Model":
        return cls(aux[0], children[0], aux[1], aux[2])

    def __repr__(self) -> str:
        mesh = dict(zip(self.mesh.axis_names, self.mesh.axis_sizes)) if self.mesh else None
        return (f"Model({self.config.architecture}, {self.config.num_params / 1e6:.2f}M params, "
                f"dtype={self.config.dtype}, param_dtype={self.config.param_dtype}, mesh={mesh})")

    def context(self) -> contextlib.AbstractContextManager:
        """Mesh + logical rules under which this model's computations should be traced."""
        stack = contextlib.ExitStack()
        if self.mesh is not None:
            stack.enter_context(jax.set_mesh(self.mesh))
        stack.enter_context(parallel.logical_rules(self.rules))
        return stack

    def __call__(self, input_ids: Any, attention_mask: Any = None, positions: Any = None,
                 segment_ids: Any = None) -> jax.Array:
        """Logits for a batch. `attention_mask` marks real tokens (1) vs padding (0);
        positions default to the count of real tokens before each token."""
        input_ids = jnp.asarray(input_ids)
        with self.context():
            return _jit_logits(self.params, self.config, input_ids, attention_mask, positions,
                               segment_ids)

    def param_shardings(self) -> llama.Params:
        return jax.tree.map(lambda x: x.sharding, self.params)


def _logits(params: llama.Params, config: ModelConfig, input_ids: jax.Array,
            attention_mask: jax.Array | None, positions: jax.Array | None,
            segment_ids: jax.Array | None) -> jax.Array:
    input_ids = parallel.constrain(input_ids, ("batch", "length"))
    return llama.forward(params, config, input_ids, positions, attention_mask,
                         segment_ids=segment_ids)[0]


_jit_logits = jax.jit(_logits, static_argnums=1)


def param_shardings(config: ModelConfig, mesh: Mesh | None,
                    rules: parallel.LogicalRules | None = None) -> llama.Params | None:
    """NamedShardings of every parameter on `mesh` (None without a mesh)."""
    if mesh is None:
        return None
    shapes = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s, jnp.float32),
                          llama.param_shapes(config), is_leaf=lambda s: isinstance(s, tuple))
    return parallel.tree_shardings(llama.param_logical_axes(config), shapes, mesh, rules)


def create_model(config: ModelConfig, *, seed: int = 0, mesh: Mesh | None = None,
                 rules: parallel.LogicalRules | None = None) -> Model:
    """A randomly initialized model, created directly in its sharded layout."""
    shardings = param_shardings(config, mesh, rules)
    init = jax.jit(llama.init_params, static_argnums=0, out_shardings=shardings)
    return Model(config, init(config, jax.random.key(seed)), mesh, rules)


def load_pretrained(path: str | os.PathLike, *, dtype: str = "float32",
                    param_dtype: str | None = None, mesh: Mesh | None = None,
                    rules: parallel.LogicalRules | None = None, **config_overrides: Any) -> Model:
    """Load a HF checkpoint directory (`config.json` + safetensors, single or sharded).

    dtype: compute dtype; param_dtype: storage dtype (default: same as `dtype`; use
    "float32" with dtype="bfloat16" for training). With `mesh`, every parameter is placed
    straight onto its sharding. `config_overrides` set ModelConfig fields such as
    `remat_policy` or `scan_layers`; with `lora` (a `lora.LoraConfig`) the checkpoint is the
    frozen base, read in the compute dtype (and quantized if asked), and fresh adapters are
    added (seeded by `lora_seed`).
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"model directory {path!r} does not exist (load_pretrained "
                                f"takes a local directory with config.json and safetensors)")
    lora_seed = config_overrides.pop("lora_seed", 0)
    config = load_config(path, dtype=dtype, param_dtype=param_dtype or dtype, **config_overrides)
    if config.lora is None:
        params = hf_checkpoint.load_params(path, config, param_shardings(config, mesh, rules))
        return Model(config, params, mesh, rules)
    base_config = config.replace(lora=None, param_dtype=config.dtype)
    base = hf_checkpoint.load_params(path, base_config, param_shardings(base_config, mesh, rules))
    attach = jax.jit(lora.attach, static_argnums=1, donate_argnums=0,
                     out_shardings=param_shardings(config, mesh, rules))
    return Model(config, attach(base, config, jax.random.key(lora_seed)), mesh, rules)


def save_pretrained(model: Model, path: str | os.PathLike, *, dtype: str | None = None,
                    max_shard_size: int | str = "5GB") -> None:
    """Write `model` as a HF checkpoint directory that `transformers` loads unchanged. A
    LoRA model is written merged (`lora.merged`: base + adapters as one plain model), and its
    adapters also as a PEFT adapter directory in `<path>/adapter` (`model/peft.py`)."""
    config, params = model.config, model.params
    if config.lora is not None:
        from jaxreason.model import peft

        peft.save_adapter(os.path.join(os.fspath(path), ADAPTER_SUBDIR), config, params,
                          dtype=dtype)
        plain = config.replace(lora=None)
        merge = jax.jit(lora.merged, static_argnums=1,
                        out_shardings=param_shardings(plain, model.mesh, model.rules))
        with model.context():
            config, params = plain, merge(params, config)
    hf_checkpoint.save_params(os.fspath(path), config, params, dtype=dtype,
                              max_shard_size=max_shard_size)


ADAPTER_SUBDIR = "adapter"  # in a LoRA model's export: its adapters in PEFT's format


def host_params(model: Model) -> llama.Params:
    """Parameters as numpy arrays on the host (gathered across processes)."""
    return jax.tree.map(np.asarray, parallel.to_host(model.params))
