"""LoRA adapters as a PEFT adapter directory (`adapter_config.json` +
`adapter_model.safetensors`), which `peft.PeftModel.from_pretrained(base, directory)` loads
onto the Hugging Face base model.

PEFT keeps, per adapted `nn.Linear(in, out)`, `lora_A.weight [rank, in]` and `lora_B.weight
[out, rank]`, named after the module path under `base_model.model.` with the adapter name
left out; ours are `A [*in, rank]` and `B [rank, *out]` with heads split out, flattened in the
same order as `hf_checkpoint`'s layout change of the base weight (so `A B` reshaped is the
transpose of PEFT's `B A`, as HF's weight is the transpose of ours).
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import numpy as np

from jaxreason.model import lora, safetensors_io
from jaxreason.model.config import ModelConfig

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


def peft_tensor_name(target: str, layer: int, which: str) -> str:
    """`which` is "A" or "B"."""
    return (f"base_model.model.model.layers.{layer}.{lora.HF_MODULES[target]}"
            f".lora_{which}.weight")


def adapter_config(config: ModelConfig, base_model: str | None = None) -> dict[str, Any]:
    """The `adapter_config.json` of `config.lora` (a plain LoRA, as PEFT 0.17 writes it)."""
    spec = config.lora
    return {
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": base_model,
        "r": spec.rank, "lora_alpha": spec.alpha, "lora_dropout": 0.0,
        "target_modules": sorted(lora.HF_MODULES[t].split(".")[-1] for t in spec.targets),
        "bias": "none", "fan_in_fan_out": False, "use_rslora": False, "use_dora": False,
        "init_lora_weights": True, "inference_mode": True, "modules_to_save": None,
        "layers_to_transform": None, "layers_pattern": None, "rank_pattern": {},
        "alpha_pattern": {},
    }


def save_adapter(directory: str, config: ModelConfig, params: Any, *,
                 base_model: str | None = None, dtype: str | None = None) -> None:
    """Write the adapters of `params` (a LoRA model's) as a PEFT adapter directory. Every
    process must call this (arrays are gathered); only process 0 writes. `base_model`: the
    base checkpoint's path or hub name, recorded for `AutoPeftModel`; `dtype`: of the saved
    tensors (default: `param_dtype`)."""
    from jaxreason.parallel import to_host

    adapters = lora.split(params)[1]
    if adapters is None or config.lora is None:
        raise ValueError("save_adapter: these parameters have no LoRA adapters")
    out_dtype = np.dtype(jax.numpy.dtype(dtype or config.param_dtype))
    tensors: dict[str, np.ndarray] = {}
    rank = config.lora.rank
    for target, adapter in adapters.items():
        a, b = np.asarray(to_host(adapter["a"])), np.asarray(to_host(adapter["b"]))
        for i in range(config.num_layers):
            tensors[peft_tensor_name(target, i, "A")] = a[i].reshape(-1, rank).T.astype(out_dtype)
            tensors[peft_tensor_name(target, i, "B")] = b[i].reshape(rank, -1).T.astype(out_dtype)
    if jax.process_index() != 0:
        return
    os.makedirs(directory, exist_ok=True)
    safetensors_io.write_tensors(os.path.join(directory, ADAPTER_WEIGHTS),
                                 dict(sorted(tensors.items())))
    with open(os.path.join(directory, ADAPTER_CONFIG), "w") as f:
        json.dump(adapter_config(config, base_model), f, indent=2)


def read_adapter(directory: str, config: ModelConfig, *, quantization: str = "none"
                 ) -> tuple[lora.LoraConfig, Any]:
    """(LoraConfig, adapters as host arrays in our layout) of a PEFT LoRA adapter directory
    for a base model of `config`; `lora.join(base_params, adapters)` with
    `config.replace(lora=...)` then runs it. Only plain LoRA adapters on the decoder's
    projections are accepted (no rsLoRA / DoRA / per-module ranks / extra trained modules)."""
    with open(os.path.join(directory, ADAPTER_CONFIG)) as f:
        info = json.load(f)
    where = os.path.join(directory, ADAPTER_CONFIG)
    if info.get("peft_type", "LORA") != "LORA":
        raise ValueError(f"{where}: peft_type {info.get('peft_type')!r} is not LORA")
    for key in ("use_rslora", "use_dora", "rank_pattern", "alpha_pattern", "modules_to_save",
                "layers_to_transform"):
        if info.get(key):
            raise ValueError(f"{where}: {key} = {info[key]!r} is not supported")
    modules = info["target_modules"]
    modules = [modules] if isinstance(modules, str) else list(modules)
    by_module = {m.split(".")[-1]: t for t, m in lora.HF_MODULES.items()}
    unknown = [m for m in modules if m not in by_module]
    if unknown:
        raise ValueError(f"{where}: target_modules {unknown} are not decoder projections")
    spec = lora.LoraConfig(rank=int(info["r"]), alpha=float(info["lora_alpha"]),
                           targets=lora.parse_targets(",".join(by_module[m] for m in modules)),
                           quantization=quantization)
    tensors = safetensors_io.read_tensors(os.path.join(directory, ADAPTER_WEIGHTS))
    shapes = lora.adapter_shapes(config.replace(lora=spec))
    adapters = {}
    for target in spec.targets:
        a_shape, b_shape = shapes[target]["a"][1:], shapes[target]["b"][1:]
        a = [tensors[peft_tensor_name(target, i, "A")].T.reshape(a_shape)
             for i in range(config.num_layers)]
        b = [tensors[peft_tensor_name(target, i, "B")].T.reshape(b_shape)
             for i in range(config.num_layers)]
        adapters[target] = {"a": np.stack(a), "b": np.stack(b)}
    return spec, adapters
