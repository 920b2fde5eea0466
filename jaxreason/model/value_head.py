"""A scalar head on the decoder: one number per position (PPO's critic, reward models).

A value model is the policy's transformer (embeddings, layers, final norm; no vocabulary
projection) plus a linear map of the final hidden state to a scalar:

    values[b, t] = hidden[b, t] . kernel + bias          (float32)

with `hidden` the final-norm states of `llama.forward(..., return_hidden=True)`, so the head
reuses the one decoder and every mesh rule of the model. Its parameters are a dict
`{"backbone": <llama params without "lm_head">, "head": {"kernel": [hidden], "bias": []}}`;
`param_logical_axes` names their axes for `jaxreason.parallel`, like `llama.param_logical_axes`.

Saved and exported as a Hugging Face `{Llama,Qwen2}ForTokenClassification` with
`num_labels = 1` (`model.*` tensors + `score.weight [1, hidden]` + `score.bias [1]`), whose
per-position logits are these values, so `transformers` loads it unchanged (and a reward
model reads the value at the last token; `AutoModelForSequenceClassification` loads the same
directory, ignoring the bias).

Initialization: `init_head` is zero (values start at 0, so early advantages are the rewards
themselves) or N(0, std); `from_policy` copies the policy's transformer and adds a fresh head;
`load_pretrained` reads a value-model directory, or a policy directory plus a fresh head.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from jaxreason import parallel
from jaxreason.model import hf_checkpoint, llama, lora
from jaxreason.model.config import ModelConfig

ValueParams = dict[str, Any]

HEAD_NAMES = {"kernel": "score.weight", "bias": "score.bias"}  # ours -> HF tensor names
HF_ARCHITECTURES = {"llama": "LlamaForTokenClassification",
                    "qwen2": "Qwen2ForTokenClassification"}


# ----------------------------------------------------------------------------- parameters

def head_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    return {"kernel": (config.hidden_size,), "bias": ()}


def param_shapes(config: ModelConfig) -> ValueParams:
    """Shapes of a value model's parameters (the backbone has no `lm_head`)."""
    backbone = {k: v for k, v in llama.param_shapes(config).items() if k != "lm_head"}
    return {"backbone": backbone, "head": head_shapes(config)}


def param_logical_axes(config: ModelConfig) -> ValueParams:
    """Logical axis names of every parameter (the head's kernel lies along `embed`)."""
    backbone = {k: v for k, v in llama.param_logical_axes(config).items() if k != "lm_head"}
    return {"backbone": backbone, "head": {"kernel": ("embed",), "bias": ()}}


def param_shardings(config: ModelConfig, mesh: Mesh | None,
                    rules: parallel.LogicalRules | None = None) -> ValueParams | None:
    """NamedShardings of every parameter on `mesh` (None without a mesh)."""
    if mesh is None:
        return None
    shapes = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s, jnp.float32), param_shapes(config),
                          is_leaf=lambda s: isinstance(s, tuple))
    return parallel.tree_shardings(param_logical_axes(config), shapes, mesh, rules)


def init_head(config: ModelConfig, rng: jax.Array | None = None, *, std: float = 0.0
              ) -> dict[str, jax.Array]:
    """A fresh head: zero (std = 0; values start at 0) or kernel ~ N(0, std); bias 0."""
    dtype = jnp.dtype(config.param_dtype)
    kernel = jnp.zeros((config.hidden_size,), dtype)
    if std > 0:
        if rng is None:
            raise ValueError("init_head: std > 0 needs an rng")
        kernel = (std * jax.random.normal(rng, (config.hidden_size,), jnp.float32)).astype(dtype)
    return {"kernel": kernel, "bias": jnp.zeros((), dtype)}


def init_params(config: ModelConfig, rng: jax.Array, *, head_std: float = 0.0) -> ValueParams:
    """A random value model (random backbone as `llama.init_params`, head as `init_head`)."""
    backbone_rng, head_rng = jax.random.split(rng)
    return from_policy(llama.init_params(config, backbone_rng), config, head_rng,
                       head_std=head_std)


def from_policy(policy_params: llama.Params, config: ModelConfig,
                rng: jax.Array | None = None, *, head_std: float = 0.0) -> ValueParams:
    """A value model initialized from the policy: a copy of its transformer (new buffers, so
    actor and critic can be updated and donated independently) and a fresh head."""
    backbone = {k: jax.tree.map(jnp.copy, v) for k, v in policy_params.items()
                if k != "lm_head"}
    return {"backbone": backbone, "head": init_head(config, rng, std=head_std)}


# ----------------------------------------------------------------------------- forward

def values_from_hidden(head: Mapping[str, jax.Array], hidden: jax.Array) -> jax.Array:
    """`[batch, length]` float32 values of final hidden states `[batch, length, hidden]`."""
    kernel = head["kernel"].astype(jnp.float32)
    out = jnp.einsum("bte,e->bt", hidden.astype(jnp.float32), kernel)
    return out + head["bias"].astype(jnp.float32)


def values(params: ValueParams, config: ModelConfig, input_ids: jax.Array,
           positions: jax.Array | None = None, attention_mask: jax.Array | None = None, *,
           segment_ids: jax.Array | None = None) -> jax.Array:
    """Values `[batch, length]` float32: the head applied to `llama.forward(..., return_hidden
    =True)` of the backbone (arguments as in `llama.forward`). values[b, t] scores the prefix
    input_ids[b, :t + 1]."""
    hidden, _ = llama.forward(params["backbone"], config, input_ids, positions, attention_mask,
                              segment_ids=segment_ids, return_hidden=True)
    return values_from_hidden(params["head"], hidden)


def batch_values(params: ValueParams, config: ModelConfig, batch: Mapping[str, jax.Array]
                 ) -> jax.Array:
    """`values` of a training batch built by `jaxreason.data.rows` (input_ids, positions,
    segment_ids `[batch, length]`); values[b, t] is the value of the state in which
    targets[b, t] is chosen."""
    segment_ids = batch["segment_ids"]
    return values(params, config, batch["input_ids"], batch["positions"], segment_ids > 0,
                  segment_ids=segment_ids)


# ----------------------------------------------------------------------------- HF files

def save_pretrained(directory: str | os.PathLike, config: ModelConfig, params: ValueParams,
                    *, dtype: str | None = None, max_shard_size: int | str = "5GB") -> None:
    """Write a HF `*ForTokenClassification` directory (num_labels = 1). Every process calls
    it; process 0 writes."""
    head = parallel.to_host(params["head"])
    extra = {HEAD_NAMES["kernel"]: np.asarray(head["kernel"]).reshape(1, -1),
             HEAD_NAMES["bias"]: np.asarray(head["bias"]).reshape(1)}
    updates = {"architectures": [HF_ARCHITECTURES[config.architecture]],
               "id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}}
    backbone = params["backbone"]
    if config.lora is not None:  # a LoRA backbone is written merged
        backbone, config = lora.merged(backbone, config), config.replace(lora=None)
    hf_checkpoint.save_params(os.fspath(directory), config, backbone, dtype=dtype,
                              max_shard_size=max_shard_size, extra_tensors=extra,
                              hf_config_updates=updates)


def is_value_model(directory: str | os.PathLike) -> bool:
    """Whether a HF directory holds a scalar head (its config names a *Classification arch)."""
    path = os.path.join(os.fspath(directory), "config.json")
    if not os.path.exists(path):
        return False
    with open(path) as f:
        archs = json.load(f).get("architectures") or []
    return any(a.endswith("Classification") for a in archs)


def load_pretrained(directory: str | os.PathLike, config: ModelConfig, *,
                    mesh: Mesh | None = None, rng: jax.Array | None = None,
                    head_std: float = 0.0) -> ValueParams:
    """Value parameters from a HF directory: a value / reward model (`score.weight [1,
    hidden]`, optional `score.bias`), or a causal LM whose transformer is copied under a
    fresh head (`init_head(rng, std=head_std)`). With `mesh`, placed on their shardings."""
    from jaxreason.model import safetensors_io

    directory = os.fspath(directory)
    shardings = param_shardings(config, mesh)
    backbone = hf_checkpoint.load_params(
        directory, config, shardings["backbone"] if shardings else None, skip=("lm_head",),
        extra_prefixes=("score.",))
    tensors = safetensors_io.open_checkpoint(safetensors_io.index_files(directory))
    dtype = jnp.dtype(config.param_dtype)
    if HEAD_NAMES["kernel"] in tensors:
        kernel, file = tensors[HEAD_NAMES["kernel"]]
        if tuple(kernel.shape) != (1, config.hidden_size):
            raise hf_checkpoint.CheckpointError(
                f"{file}: {HEAD_NAMES['kernel']!r} has shape {tuple(kernel.shape)}, expected "
                f"(1, {config.hidden_size}) (a scalar head)")
        bias = tensors[HEAD_NAMES["bias"]][0] if HEAD_NAMES["bias"] in tensors else np.zeros(1)
        head = {"kernel": jnp.asarray(np.asarray(kernel).reshape(-1), dtype),
                "bias": jnp.asarray(np.asarray(bias).reshape(()), dtype)}
    else:
        head = init_head(config, rng, std=head_std)
    if shardings is not None:
        head = jax.device_put(head, shardings["head"])
    return {"backbone": backbone, "head": head}
