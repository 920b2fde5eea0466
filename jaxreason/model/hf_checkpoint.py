"""Hugging Face safetensors checkpoints <-> our parameter tree.

One table maps each of our parameters to its HF tensor name and the layout change between
them (HF stores `nn.Linear` weights as `[out, in]`; we store `[in, ...]` with heads split out).
Import places each tensor straight onto its target sharding: every device's callback slices
only its own shard out of the memory-mapped file, so no host ever holds a whole large model.
Export gathers one layer of one tensor at a time.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxreason.model import safetensors_io
from jaxreason.model.config import ModelConfig, config_to_hf_dict
from jaxreason.model.llama import Params, param_shapes

# HF tensors that carry no parameters of ours (old checkpoints stored RoPE buffers).
IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)


class CheckpointError(ValueError):
    """A checkpoint whose tensors do not match the model's config."""


def _to_ours(config: ModelConfig, kind: str) -> Callable[[np.ndarray], np.ndarray]:
    """HF layout -> ours for one layer's tensor (returns a view where numpy can)."""
    h, nh, kv, d = config.hidden_size, config.num_heads, config.num_kv_heads, config.head_dim
    return {
        "q": lambda w: w.T.reshape(h, nh, d),
        "kv": lambda w: w.T.reshape(h, kv, d),
        "o": lambda w: w.T.reshape(nh, d, h),
        "q_bias": lambda w: w.reshape(nh, d),
        "kv_bias": lambda w: w.reshape(kv, d),
        "T": lambda w: w.T,
        "same": lambda w: w,
    }[kind]


def _to_hf(kind: str) -> Callable[[np.ndarray], np.ndarray]:
    """Ours -> HF layout for one layer's tensor."""
    return {
        "q": lambda w: w.reshape(w.shape[0], -1).T,
        "kv": lambda w: w.reshape(w.shape[0], -1).T,
        "o": lambda w: w.reshape(-1, w.shape[-1]).T,
        "q_bias": lambda w: w.reshape(-1),
        "kv_bias": lambda w: w.reshape(-1),
        "T": lambda w: w.T,
        "same": lambda w: w,
    }[kind]


# our path -> (HF name, layout kind); "{i}" is the layer index for stacked parameters.
_LAYER_TABLE = {
    "attn_norm": ("model.layers.{i}.input_layernorm.weight", "same"),
    "q": ("model.layers.{i}.self_attn.q_proj.weight", "q"),
    "k": ("model.layers.{i}.self_attn.k_proj.weight", "kv"),
    "v": ("model.layers.{i}.self_attn.v_proj.weight", "kv"),
    "o": ("model.layers.{i}.self_attn.o_proj.weight", "o"),
    "q_bias": ("model.layers.{i}.self_attn.q_proj.bias", "q_bias"),
    "k_bias": ("model.layers.{i}.self_attn.k_proj.bias", "kv_bias"),
    "v_bias": ("model.layers.{i}.self_attn.v_proj.bias", "kv_bias"),
    "o_bias": ("model.layers.{i}.self_attn.o_proj.bias", "same"),
    "mlp_norm": ("model.layers.{i}.post_attention_layernorm.weight", "same"),
    "gate": ("model.layers.{i}.mlp.gate_proj.weight", "T"),
    "up": ("model.layers.{i}.mlp.up_proj.weight", "T"),
    "down": ("model.layers.{i}.mlp.down_proj.weight", "T"),
}
_TOP_TABLE = {
    "embed": ("model.embed_tokens.weight", "same"),
    "final_norm": ("model.norm.weight", "same"),
    "lm_head": ("lm_head.weight", "T"),
}


def hf_tensor_names(config: ModelConfig) -> list[str]:
    """Every HF tensor name a checkpoint of `config` must contain."""
    shapes = param_shapes(config)
    names = [_TOP_TABLE[k][0] for k in shapes if k != "layers"]
    for key in shapes["layers"]:
        names += [_LAYER_TABLE[key][0].format(i=i) for i in range(config.num_layers)]
    return names


def _hf_shape(our_shape: tuple[int, ...], kind: str) -> tuple[int, ...]:
    return _to_hf(kind)(np.empty(our_shape, np.uint8)).shape


def load_params(directory: str, config: ModelConfig,
                shardings: Params | None = None, *, skip: tuple[str, ...] = (),
                extra_prefixes: tuple[str, ...] = ()) -> Params:
    """Read the checkpoint in `directory` into our parameter tree.

    `shardings` (same tree as the params; default: the first device) decides where each tensor
    goes; every device reads only its own slice. Values are cast to `config.param_dtype`.
    `skip`: top-level parameters not to read (a value model's backbone has no "lm_head");
    `extra_prefixes`: HF tensor names that belong to a head read elsewhere ("score.").
    """
    files = safetensors_io.index_files(directory)
    tensors = safetensors_io.open_checkpoint(files)
    dtype = jnp.dtype(config.param_dtype)
    shapes = {k: v for k, v in param_shapes(config).items() if k not in skip}
    skipped = {_TOP_TABLE[k][0] for k in skip if k in _TOP_TABLE}
    expected = set(hf_tensor_names(config)) - skipped
    missing = sorted(expected - set(tensors))
    if missing:
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise CheckpointError(f"{directory}: missing tensor(s) {missing[:5]}{more} required by "
                              f"config ({config.architecture}, {config.num_layers} layers, "
                              f"tie_word_embeddings={config.tie_word_embeddings})")
    unexpected = sorted(n for n in set(tensors) - expected
                        if not n.endswith(IGNORED_SUFFIXES) and n not in skipped
                        and not n.startswith(extra_prefixes)
                        and not (n == "lm_head.weight" and config.tie_word_embeddings))
    if unexpected:
        raise CheckpointError(f"{directory}: tensor(s) {unexpected[:5]} are not part of a "
                              f"{config.architecture} model with this config (e.g. "
                              f"attention_bias / tie_word_embeddings disagree with the weights)")
    default = jax.sharding.SingleDeviceSharding(jax.devices()[0])

    def place(name_of: Callable[[int], str], kind: str, shape: tuple[int, ...],
              stacked: bool, sharding: Any) -> jax.Array:
        layer_shape = shape[1:] if stacked else shape
        hf_shape = _hf_shape(layer_shape, kind)
        count = shape[0] if stacked else 1
        for i in range(count):
            array, file = tensors[name_of(i)]
            if array.shape != hf_shape:
                raise CheckpointError(f"{file}: tensor {name_of(i)!r} has shape "
                                      f"{tuple(array.shape)}, expected {hf_shape} from the config")
        transform = _to_ours(config, kind)
        memo: dict[Any, np.ndarray] = {}

        def read(index: tuple[slice, ...]) -> np.ndarray:
            key = tuple((s.start, s.stop, s.step) for s in index)
            if key not in memo:
                if stacked:
                    layers = range(count)[index[0]]
                    memo[key] = np.stack([transform(tensors[name_of(i)][0])[index[1:]]
                                          .astype(dtype) for i in layers])
                else:
                    memo[key] = np.asarray(transform(tensors[name_of(0)][0])[index],
                                           dtype=dtype)
            return memo[key]
        return jax.make_array_from_callback(shape, sharding or default, read)

    params: Params = {"layers": {}}
    for key, shape in shapes["layers"].items():
        name, kind = _LAYER_TABLE[key]
        sharding = shardings["layers"][key] if shardings else None
        params["layers"][key] = place(lambda i, n=name: n.format(i=i), kind, shape, True, sharding)
    for key, shape in shapes.items():
        if key == "layers":
            continue
        name, kind = _TOP_TABLE[key]
        params[key] = place(lambda i, n=name: n, kind, shape, False,
                            shardings[key] if shardings else None)
    return params


def _parse_size(size: int | str) -> int:
    if isinstance(size, int):
        return size
    units = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
    s = size.strip().upper()
    for unit, factor in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if s.endswith(unit):
            return int(float(s[: -len(unit)]) * factor)
    return int(s)


class _ShardedWriter:
    """Collects tensors into shards of at most `limit` bytes; a full shard goes to disk."""

    def __init__(self, directory: str, limit: int, write: bool) -> None:
        self.directory, self.limit, self.write = directory, limit, write
        self.current: dict[str, np.ndarray] = {}
        self.current_bytes = 0
        self.total_bytes = 0
        self.files: list[str] = []
        self.weight_map: dict[str, int] = {}

    def add(self, name: str, array: np.ndarray) -> None:
        if self.current and self.current_bytes + array.nbytes > self.limit:
            self.flush()
        self.current[name] = array
        self.current_bytes += array.nbytes
        self.total_bytes += array.nbytes
        self.weight_map[name] = len(self.files)

    def flush(self) -> None:
        name = f"model-{len(self.files) + 1:05d}.safetensors.partial"
        if self.write:
            safetensors_io.write_tensors(os.path.join(self.directory, name), self.current)
        self.files.append(name)
        self.current, self.current_bytes = {}, 0

    def finish(self) -> None:
        """Rename the shards to HF's names and write the index when there are several."""
        self.flush()
        if not self.write:
            return
        total = len(self.files)
        names = ["model.safetensors"] if total == 1 else [
            f"model-{n + 1:05d}-of-{total:05d}.safetensors" for n in range(total)]
        for partial, final in zip(self.files, names):
            os.replace(os.path.join(self.directory, partial), os.path.join(self.directory, final))
        index = os.path.join(self.directory, "model.safetensors.index.json")
        if total > 1:
            with open(index, "w") as f:
                json.dump({"metadata": {"total_size": self.total_bytes},
                           "weight_map": {n: names[s] for n, s in sorted(self.weight_map.items())}},
                          f, indent=2)
        elif os.path.exists(index):
            os.remove(index)


def save_params(directory: str, config: ModelConfig, params: Params, *,
                dtype: str | None = None, max_shard_size: int | str = "5GB",
                extra_tensors: dict[str, np.ndarray] | None = None,
                hf_config_updates: dict[str, Any] | None = None) -> None:
    """Write `config.json` and safetensors (sharded above `max_shard_size`) that
    `transformers.AutoModelForCausalLM.from_pretrained` loads. Every process must call this
    (arrays are gathered collectively, one layer of one tensor at a time); only process 0
    writes. `extra_tensors` (HF name -> host array, e.g. a value head's "score.weight") are
    written after the model's, and `hf_config_updates` merged into config.json (e.g. the
    architecture of a model with such a head)."""
    from jaxreason.parallel import to_host

    if "lora" in params["layers"] or config.lora is not None:
        raise ValueError("save_params writes plain weights: merge a LoRA model's adapters first "
                         "(model.save_pretrained does, with lora.merged)")
    os.makedirs(directory, exist_ok=True)
    out_dtype = np.dtype(jnp.dtype(dtype or config.param_dtype))
    writer = _ShardedWriter(directory, _parse_size(max_shard_size), jax.process_index() == 0)

    def hf_array(array: jax.Array, kind: str) -> np.ndarray:
        return np.ascontiguousarray(_to_hf(kind)(to_host(array))).astype(out_dtype)

    take_layer = jax.jit(lambda x, i: x[i])
    writer.add(_TOP_TABLE["embed"][0], hf_array(params["embed"], "same"))
    for i in range(config.num_layers):
        for key, (name, kind) in _LAYER_TABLE.items():
            if key in params["layers"]:
                writer.add(name.format(i=i), hf_array(take_layer(params["layers"][key], i), kind))
    for key in ("final_norm", "lm_head"):
        if key in params:
            writer.add(_TOP_TABLE[key][0], hf_array(params[key], _TOP_TABLE[key][1]))
    for name, array in (extra_tensors or {}).items():
        writer.add(name, np.ascontiguousarray(array).astype(out_dtype))
    writer.finish()
    if writer.write:
        hf = config_to_hf_dict(config.replace(param_dtype=str(out_dtype)))
        hf.update(hf_config_updates or {})
        with open(os.path.join(directory, "config.json"), "w") as f:
            json.dump(hf, f, indent=2)
