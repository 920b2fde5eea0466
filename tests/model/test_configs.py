"""config.json parsing: real public models, both RoPE layouts, and clear errors."""

import json
import pathlib

import jax
import pytest
import torch
import transformers

from jaxreason.model import ConfigError, config_from_hf_dict, config_to_hf_dict, load_config
from jaxreason.model.llama import init_params

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "hf_configs"


def fixture(name):
    return json.loads((FIXTURES / f"{name}.json").read_text())


def count_params(config) -> int:
    shapes = jax.eval_shape(lambda: init_params(config, jax.random.key(0)))
    return sum(x.size for x in jax.tree.leaves(shapes))


def hf_param_count(d) -> int:
    """The oracle's count, on the meta device (no memory)."""
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(
            transformers.AutoConfig.for_model(**d))
    return sum(p.numel() for p in model.parameters())


def test_llama_3_1_8b_has_8_03b_parameters():
    config = load_config(FIXTURES / "llama-3.1-8b.json")
    assert config.rope_scaling.rope_type == "llama3" and config.rope_scaling.factor == 8.0
    assert (config.num_kv_heads, config.head_dim, config.tie_word_embeddings) == (8, 128, False)
    assert count_params(config) == 8_030_261_248 == config.num_params


@pytest.mark.parametrize("name", ["llama-3.1-8b", "llama-3.2-1b", "qwen2.5-7b-instruct"])
def test_real_configs_parse_and_count_like_transformers(name):
    d = fixture(name)
    config = config_from_hf_dict(d)
    assert count_params(config) == config.num_params == hf_param_count(d)


def test_llama_3_2_1b_is_tied_and_qwen_has_qkv_bias():
    llama = config_from_hf_dict(fixture("llama-3.2-1b"))
    assert llama.tie_word_embeddings and llama.head_dim == 64 and llama.rope_scaling.factor == 32.0
    qwen = config_from_hf_dict(fixture("qwen2.5-7b-instruct"))
    assert qwen.architecture == "qwen2" and qwen.qkv_bias and not qwen.o_bias
    assert qwen.rope_theta == 1e6 and qwen.rope_scaling.rope_type == "default"


def test_transformers5_rope_parameters_layout_equals_the_old_layout():
    old = fixture("llama-3.1-8b")
    new = {k: v for k, v in old.items() if k not in ("rope_theta", "rope_scaling")}
    new["rope_parameters"] = dict(old["rope_scaling"], rope_theta=old["rope_theta"])
    assert config_from_hf_dict(old) == config_from_hf_dict(new)
    # and what transformers 5 itself writes
    written = transformers.LlamaConfig(**{k: v for k, v in old.items()
                                          if k not in ("architectures",)}).to_dict()
    assert "rope_parameters" in written
    assert config_from_hf_dict(dict(written, architectures=["LlamaForCausalLM"])) == \
        config_from_hf_dict(old)


@pytest.mark.parametrize("name", ["llama-3.1-8b", "llama-3.2-1b", "qwen2.5-7b-instruct"])
def test_exported_config_round_trips(name):
    config = config_from_hf_dict(fixture(name))
    assert config_from_hf_dict(config_to_hf_dict(config)) == config


def test_unknown_architecture_names_the_field():
    d = dict(fixture("llama-3.1-8b"), architectures=["MistralForCausalLM"], model_type="mistral")
    with pytest.raises(ConfigError, match="architectures.*MistralForCausalLM"):
        config_from_hf_dict(d)


def test_unsupported_rope_type_names_the_field():
    d = fixture("llama-3.1-8b")
    d["rope_scaling"] = {"rope_type": "yarn", "factor": 4.0}
    with pytest.raises(ConfigError, match="rope_scaling.rope_type.*yarn"):
        config_from_hf_dict(d)
    d = fixture("llama-3.1-8b")
    d.pop("rope_scaling")
    d["rope_parameters"] = {"rope_type": "dynamic", "rope_theta": 1.0, "factor": 2.0}
    with pytest.raises(ConfigError, match="rope_parameters.rope_type.*dynamic"):
        config_from_hf_dict(d)


def test_missing_llama3_rope_field_and_other_unsupported_fields_are_named():
    d = fixture("llama-3.2-1b")
    del d["rope_scaling"]["low_freq_factor"]
    with pytest.raises(ConfigError, match="low_freq_factor"):
        config_from_hf_dict(d)
    with pytest.raises(ConfigError, match="use_sliding_window"):
        config_from_hf_dict(dict(fixture("qwen2.5-7b-instruct"), use_sliding_window=True))
    with pytest.raises(ConfigError, match="hidden_act.*gelu"):
        config_from_hf_dict(dict(fixture("llama-3.2-1b"), hidden_act="gelu"))
    with pytest.raises(ConfigError, match="hidden_size"):
        config_from_hf_dict({k: v for k, v in fixture("llama-3.2-1b").items() if k != "hidden_size"})


def test_invalid_json_names_file_and_line(tmp_path):
    (tmp_path / "config.json").write_text('{\n  "hidden_size": 4,\n  oops\n}')
    with pytest.raises(ConfigError, match=r"config.json: line 3"):
        load_config(tmp_path)
