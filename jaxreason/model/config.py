"""Model configuration, read from and written to Hugging Face `config.json` files.

One frozen, hashable dataclass describes the architecture so it can be a static argument of
`jax.jit`. Two `config.json` layouts exist in the wild: transformers >= 5 keeps RoPE settings in
`rope_parameters`; older files use top-level `rope_theta` plus `rope_scaling`. Both are read.
Anything this implementation would silently compute differently is rejected with an error that
names the offending field.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Mapping

from jaxreason.model.lora import LoraConfig

SUPPORTED_ARCHITECTURES = {"LlamaForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2"}
# The same decoder under a scalar head (value / reward models, `model/value_head.py`): their
# config.json reads into the same ModelConfig (the head is not part of it).
HEAD_ARCHITECTURES = {"LlamaForTokenClassification": "llama",
                      "Qwen2ForTokenClassification": "qwen2",
                      "LlamaForSequenceClassification": "llama",
                      "Qwen2ForSequenceClassification": "qwen2"}
SUPPORTED_ROPE_TYPES = ("default", "linear", "llama3")
DTYPES = ("float32", "bfloat16", "float16")


class ConfigError(ValueError):
    """A config.json (or preset) this implementation cannot represent faithfully."""


@dataclasses.dataclass(frozen=True)
class RopeScaling:
    """RoPE frequency scaling. `rope_type` is one of SUPPORTED_ROPE_TYPES."""

    rope_type: str = "default"
    factor: float = 1.0
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_max_position_embeddings: int = 8192


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture plus numerics of a decoder-only Llama / Qwen2 model.

    `dtype` is the compute dtype of activations and matmuls, `param_dtype` the storage dtype of
    the parameters (fp32 master weights with bf16 compute is the training default on
    accelerators). `remat_policy` is one of "none", "full", "dots", "dots_no_batch" and
    `scan_layers` runs the layer stack under `lax.scan` (fast compiles for deep models).
    `lora` adds low-rank adapters to the parameters (`model/lora.py`); None: a plain model.
    """

    architecture: str = "llama"  # "llama" | "qwen2"
    vocab_size: int = 32000
    hidden_size: int = 4096
    intermediate_size: int = 11008
    num_layers: int = 32
    num_heads: int = 32
    num_kv_heads: int = 32
    head_dim: int = 128
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    rope_scaling: RopeScaling = RopeScaling()
    max_position_embeddings: int = 4096
    tie_word_embeddings: bool = False
    qkv_bias: bool = False
    o_bias: bool = False
    bos_token_id: int | None = None
    eos_token_id: int | tuple[int, ...] | None = None
    pad_token_id: int | None = None
    dtype: str = "float32"
    param_dtype: str = "float32"
    remat_policy: str = "none"
    scan_layers: bool = False
    lora: LoraConfig | None = None

    def __post_init__(self) -> None:
        if self.architecture not in SUPPORTED_ARCHITECTURES.values():
            raise ConfigError(f"architecture: unsupported {self.architecture!r}; "
                              f"supported: {sorted(SUPPORTED_ARCHITECTURES.values())}")
        for field in ("dtype", "param_dtype"):
            if getattr(self, field) not in DTYPES:
                raise ConfigError(f"{field}: {getattr(self, field)!r} is not one of {DTYPES}")
        if self.remat_policy not in REMAT_POLICIES:
            raise ConfigError(f"remat_policy: {self.remat_policy!r} is not one of {REMAT_POLICIES}")
        if self.rope_scaling.rope_type not in SUPPORTED_ROPE_TYPES:
            raise ConfigError(f"rope_scaling.rope_type: unsupported {self.rope_scaling.rope_type!r}; "
                              f"supported: {SUPPORTED_ROPE_TYPES}")
        if self.num_heads % self.num_kv_heads:
            raise ConfigError(f"num_attention_heads ({self.num_heads}) must be a multiple of "
                              f"num_key_value_heads ({self.num_kv_heads})")

    def replace(self, **changes: Any) -> "ModelConfig":
        return dataclasses.replace(self, **changes)

    @property
    def num_params(self) -> int:
        """Parameter count, computed from the shapes (embeddings counted once when tied;
        a LoRA model's adapters included, its quantized base counted as the weights it
        stands for)."""
        h, i, d = self.hidden_size, self.intermediate_size, self.head_dim
        attn = h * d * (2 * self.num_heads + 2 * self.num_kv_heads)
        if self.qkv_bias:
            attn += d * (self.num_heads + 2 * self.num_kv_heads)
        if self.o_bias:
            attn += h
        layer = attn + 3 * h * i + 2 * h
        head = 0 if self.tie_word_embeddings else h * self.vocab_size
        adapters = 0
        if self.lora is not None:
            from jaxreason.model.lora import num_adapter_params

            adapters = num_adapter_params(self)
        return self.num_layers * layer + self.vocab_size * h + h + head + adapters

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token (forward + backward = 3x forward), with attention scores."""
        matmul_params = self.num_params - self.vocab_size * self.hidden_size * (
            0 if self.tie_word_embeddings else 1)
        attention = 2 * self.num_layers * self.num_heads * self.head_dim * seq_len  # QK^T and PV
        return 6.0 * matmul_params + 6.0 * attention


REMAT_POLICIES = ("none", "full", "dots", "dots_no_batch")


def _get(d: Mapping[str, Any], key: str, default: Any = dataclasses.MISSING, where: str = "") -> Any:
    if key in d and d[key] is not None:
        return d[key]
    if default is dataclasses.MISSING:
        raise ConfigError(f"{where}missing required field {key!r}")
    return default


def _rope_from_hf(d: Mapping[str, Any], where: str) -> tuple[float, RopeScaling]:
    """Read RoPE settings from either layout (`rope_parameters` or `rope_theta`/`rope_scaling`)."""
    params = d.get("rope_parameters")
    if isinstance(params, Mapping) and params:
        theta = float(params.get("rope_theta", d.get("rope_theta", 10000.0)))
        scaling, field = params, "rope_parameters"
    else:
        theta = float(d.get("rope_theta", 10000.0) or 10000.0)
        scaling, field = d.get("rope_scaling") or {}, "rope_scaling"
    rope_type = scaling.get("rope_type", scaling.get("type", "default")) or "default"
    if rope_type not in SUPPORTED_ROPE_TYPES:
        raise ConfigError(f"{where}{field}.rope_type: unsupported RoPE type {rope_type!r}; "
                          f"supported: {SUPPORTED_ROPE_TYPES}")
    kwargs: dict[str, Any] = {"rope_type": rope_type}
    if rope_type in ("linear", "llama3"):
        kwargs["factor"] = float(_get(scaling, "factor", where=f"{where}{field}: "))
    if rope_type == "llama3":
        for key in ("low_freq_factor", "high_freq_factor", "original_max_position_embeddings"):
            kwargs[key] = type(getattr(RopeScaling(), key))(
                _get(scaling, key, where=f"{where}{field}: "))
    return theta, RopeScaling(**kwargs)


def config_from_hf_dict(d: Mapping[str, Any], *, source: str = "config.json",
                        **overrides: Any) -> ModelConfig:
    """Build a ModelConfig from a parsed HF config.json dict; `overrides` set numerics fields."""
    where = f"{source}: "
    archs = d.get("architectures") or []
    model_type = d.get("model_type")
    arch = None
    for name in archs:
        if name in SUPPORTED_ARCHITECTURES or name in HEAD_ARCHITECTURES:
            arch = {**SUPPORTED_ARCHITECTURES, **HEAD_ARCHITECTURES}[name]
    if arch is None and not archs and model_type in ("llama", "qwen2"):
        arch = model_type
    if arch is None:
        raise ConfigError(f"{where}architectures: unsupported {archs or model_type!r}; "
                          f"supported: {sorted(SUPPORTED_ARCHITECTURES)}")
    act = d.get("hidden_act", "silu")
    if act != "silu":
        raise ConfigError(f"{where}hidden_act: unsupported activation {act!r} (only 'silu')")
    if d.get("mlp_bias"):
        raise ConfigError(f"{where}mlp_bias: true is not supported")
    if d.get("use_sliding_window"):
        raise ConfigError(f"{where}use_sliding_window: sliding-window attention is not supported")
    if int(d.get("pretraining_tp", 1) or 1) != 1:
        raise ConfigError(f"{where}pretraining_tp: only 1 is supported")
    hidden = int(_get(d, "hidden_size", where=where))
    heads = int(_get(d, "num_attention_heads", where=where))
    theta, scaling = _rope_from_hf(d, where)
    attention_bias = bool(d.get("attention_bias", False))
    eos = d.get("eos_token_id")
    fields = dict(
        architecture=arch,
        vocab_size=int(_get(d, "vocab_size", where=where)),
        hidden_size=hidden,
        intermediate_size=int(_get(d, "intermediate_size", where=where)),
        num_layers=int(_get(d, "num_hidden_layers", where=where)),
        num_heads=heads,
        num_kv_heads=int(_get(d, "num_key_value_heads", heads, where=where)),
        head_dim=int(_get(d, "head_dim", hidden // heads, where=where)),
        rms_norm_eps=float(_get(d, "rms_norm_eps", 1e-6, where=where)),
        rope_theta=theta,
        rope_scaling=scaling,
        max_position_embeddings=int(_get(d, "max_position_embeddings", 4096, where=where)),
        tie_word_embeddings=bool(d.get("tie_word_embeddings", False)),
        qkv_bias=True if arch == "qwen2" else attention_bias,
        o_bias=False if arch == "qwen2" else attention_bias,
        bos_token_id=d.get("bos_token_id"),
        eos_token_id=tuple(eos) if isinstance(eos, list) else eos,
        pad_token_id=d.get("pad_token_id"),
    )
    fields.update(overrides)
    try:
        return ModelConfig(**fields)
    except TypeError as e:
        raise ConfigError(f"{where}{e}") from None


def load_config(path: str | os.PathLike, **overrides: Any) -> ModelConfig:
    """Read `<path>/config.json` (or a config.json path) into a ModelConfig."""
    path = os.fspath(path)
    file = os.path.join(path, "config.json") if os.path.isdir(path) else path
    if not os.path.exists(file):
        raise FileNotFoundError(f"no config.json at {file}")
    try:
        with open(file) as f:
            d = json.load(f)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{file}: line {e.lineno}: invalid JSON: {e.msg}") from None
    return config_from_hf_dict(d, source=file, **overrides)


def config_to_hf_dict(config: ModelConfig) -> dict[str, Any]:
    """The HF config.json for `config`, in the transformers-5 layout (older versions read it too
    because `rope_theta`/`rope_scaling` are written as well)."""
    arch_name = {v: k for k, v in SUPPORTED_ARCHITECTURES.items()}[config.architecture]
    rope: dict[str, Any] = {"rope_type": config.rope_scaling.rope_type,
                            "rope_theta": config.rope_theta}
    if config.rope_scaling.rope_type in ("linear", "llama3"):
        rope["factor"] = config.rope_scaling.factor
    if config.rope_scaling.rope_type == "llama3":
        rope.update(low_freq_factor=config.rope_scaling.low_freq_factor,
                    high_freq_factor=config.rope_scaling.high_freq_factor,
                    original_max_position_embeddings=
                    config.rope_scaling.original_max_position_embeddings)
    d: dict[str, Any] = {
        "architectures": [arch_name],
        "model_type": config.architecture,
        "vocab_size": config.vocab_size,
        "hidden_size": config.hidden_size,
        "intermediate_size": config.intermediate_size,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads,
        "num_key_value_heads": config.num_kv_heads,
        "head_dim": config.head_dim,
        "hidden_act": "silu",
        "rms_norm_eps": config.rms_norm_eps,
        "max_position_embeddings": config.max_position_embeddings,
        "tie_word_embeddings": config.tie_word_embeddings,
        "rope_parameters": rope,
        "rope_theta": config.rope_theta,
        "rope_scaling": None if config.rope_scaling.rope_type == "default" else
        {k: v for k, v in rope.items() if k != "rope_theta"},
        "bos_token_id": config.bos_token_id,
        "eos_token_id": list(config.eos_token_id) if isinstance(config.eos_token_id, tuple)
        else config.eos_token_id,
        "pad_token_id": config.pad_token_id,
        "torch_dtype": config.param_dtype,
        "dtype": config.param_dtype,
    }
    if config.architecture == "llama":
        d.update(attention_bias=config.qkv_bias, mlp_bias=False)
    else:
        d.update(use_sliding_window=False, sliding_window=None)
    return d


# Small architectures for CPU runs and tests; `vocab_size` is usually overridden to the
# tokenizer's size. Real models come from their own config.json.
PRESETS: dict[str, dict[str, Any]] = {
    "llama-tiny": dict(architecture="llama", vocab_size=512, hidden_size=64, intermediate_size=176,
                       num_layers=2, num_heads=4, num_kv_heads=2, head_dim=16, rms_norm_eps=1e-5,
                       rope_theta=10000.0, max_position_embeddings=2048,
                       tie_word_embeddings=True),
    "llama-small": dict(architecture="llama", vocab_size=512, hidden_size=256,
                        intermediate_size=688, num_layers=4, num_heads=8, num_kv_heads=4,
                        head_dim=32, rms_norm_eps=1e-5, rope_theta=10000.0,
                        max_position_embeddings=2048, tie_word_embeddings=True),
    "qwen2-tiny": dict(architecture="qwen2", vocab_size=512, hidden_size=64, intermediate_size=176,
                       num_layers=2, num_heads=4, num_kv_heads=2, head_dim=16, rms_norm_eps=1e-6,
                       rope_theta=1000000.0, max_position_embeddings=2048, qkv_bias=True,
                       tie_word_embeddings=True),
}


def preset_names() -> list[str]:
    """Tiny architectures (PRESETS) and real ones (`architectures.ARCHITECTURES`)."""
    from jaxreason.model.architectures import ARCHITECTURES

    return sorted(PRESETS) + sorted(ARCHITECTURES)


def is_real_architecture(name: str) -> bool:
    """Whether preset `name` is a released model's architecture (it has its own vocabulary
    and special tokens, which a tokenizer must not override)."""
    from jaxreason.model.architectures import ARCHITECTURES

    return name in ARCHITECTURES


def preset_config(name: str, **overrides: Any) -> ModelConfig:
    """A named architecture with field overrides: a tiny one (see PRESETS) or a released
    model's (`jaxreason.model.architectures`, read like its config.json)."""
    if is_real_architecture(name):
        from jaxreason.model.architectures import ARCHITECTURES

        return config_from_hf_dict(ARCHITECTURES[name], source=f"preset {name}", **overrides)
    if name not in PRESETS:
        raise ConfigError(f"model preset {name!r} is unknown; known: {preset_names()}")
    fields = dict(PRESETS[name])
    fields.update(overrides)
    return ModelConfig(**fields)
