"""Broken checkpoints fail with one error that names the problem."""

import json
import os

import numpy as np
import pytest

import jaxreason
from jaxreason.model import CheckpointError, ConfigError
from jaxreason.model.safetensors_io import read_tensors, write_tensors
from hf_oracle import save_variant


def rewrite(directory, change):
    file = directory / "model.safetensors"
    tensors = {k: np.array(v) for k, v in read_tensors(file).items()}
    change(tensors)
    os.remove(file)
    write_tensors(file, tensors)


def test_missing_tensor_is_named(tmp_path):
    save_variant("llama_untied", tmp_path)
    rewrite(tmp_path, lambda t: t.pop("model.layers.1.mlp.up_proj.weight"))
    with pytest.raises(CheckpointError, match=r"missing tensor.*model\.layers\.1\.mlp\.up_proj"):
        jaxreason.load_pretrained(tmp_path)


def test_shape_mismatch_names_tensor_file_and_shapes(tmp_path):
    save_variant("llama_untied", tmp_path)

    def shrink(t):
        t["model.layers.0.self_attn.k_proj.weight"] = t["model.layers.0.self_attn.k_proj.weight"][:16]
    rewrite(tmp_path, shrink)
    with pytest.raises(CheckpointError, match=r"model\.safetensors: tensor "
                       r"'model\.layers\.0\.self_attn\.k_proj\.weight' has shape \(16, 64\), "
                       r"expected \(32, 64\)"):
        jaxreason.load_pretrained(tmp_path)


def test_unknown_architecture_in_checkpoint_dir_is_named(tmp_path):
    save_variant("llama_untied", tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["architectures"] = ["GPT2LMHeadModel"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="architectures.*GPT2LMHeadModel"):
        jaxreason.load_pretrained(tmp_path)


def test_weights_that_disagree_with_the_config_are_reported(tmp_path):
    save_variant("qwen2_bias_untied", tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["architectures"], config["model_type"] = ["LlamaForCausalLM"], "llama"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="q_proj.bias"):
        jaxreason.load_pretrained(tmp_path)


def test_missing_directory_and_missing_weights_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="does-not-exist"):
        jaxreason.load_pretrained(tmp_path / "does-not-exist")
    save_variant("llama_untied", tmp_path)
    os.remove(tmp_path / "model.safetensors")
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        jaxreason.load_pretrained(tmp_path)


def test_truncated_safetensors_file_is_reported(tmp_path):
    save_variant("llama_untied", tmp_path)
    file = tmp_path / "model.safetensors"
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="model.safetensors: tensor .* file size"):
        jaxreason.load_pretrained(tmp_path)
