"""Llama / Qwen2 in JAX: config, forward, HF checkpoint import/export."""

from jaxreason.model.config import (ConfigError, ModelConfig, RopeScaling, config_from_hf_dict,
                                    config_to_hf_dict, load_config, preset_config)
from jaxreason.model.hf_checkpoint import CheckpointError
from jaxreason.model.llama import KVCache, forward, init_params, lm_head, param_logical_axes
from jaxreason.model.model import (Model, create_model, load_pretrained, param_shardings,
                                   save_pretrained)

__all__ = [
    "CheckpointError", "ConfigError", "KVCache", "Model", "ModelConfig", "RopeScaling",
    "config_from_hf_dict", "config_to_hf_dict", "create_model", "forward", "init_params",
    "lm_head", "load_config", "load_pretrained", "param_logical_axes", "param_shardings",
    "preset_config", "save_pretrained",
]
