"""Architecture presets of released models: the same config as their config.json, the
published parameter counts, and a recipe built from a preset keeps the real vocabulary."""

import dataclasses
import json
import pathlib

import pytest
from ml_collections import ConfigDict

from jaxreason.model.config import config_from_hf_dict, preset_config, preset_names
from jaxreason.train import build
from jaxreason.train.errors import ConfigError

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "hf_configs"

# Parameter counts published for the released checkpoints (safetensors metadata / model cards).
PUBLISHED_PARAMS = {
    "llama-3.1-8b": 8_030_261_248,
    "llama-3.1-70b": 70_553_706_496,
    "llama-3.2-1b": 1_235_814_400,
    "llama-3.2-3b": 3_212_749_824,
    "llama-2-70b": 68_976_648_192,
    "qwen2.5-1.5b": 1_543_714_304,
    "qwen2.5-7b": 7_615_616_512,
    "qwen2.5-32b": 32_763_876_352,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_preset_parameter_count_is_the_published_one(name):
    assert preset_config(name).num_params == PUBLISHED_PARAMS[name]


@pytest.mark.parametrize("name, fixture", [("llama-3.1-8b", "llama-3.1-8b.json"),
                                           ("llama-3.2-1b", "llama-3.2-1b.json"),
                                           ("qwen2.5-7b", "qwen2.5-7b-instruct.json")])
def test_preset_equals_the_models_config_json(name, fixture):
    real = config_from_hf_dict(json.loads((FIXTURES / fixture).read_text()))
    preset = preset_config(name)
    # the presets carry the Instruct models' end-of-turn EOS; the architecture is identical
    fields = [f.name for f in dataclasses.fields(real) if f.name != "eos_token_id"]
    assert {f: getattr(preset, f) for f in fields} == {f: getattr(real, f) for f in fields}


def test_every_listed_preset_builds():
    assert set(PUBLISHED_PARAMS) <= set(preset_names())
    for name in preset_names():
        preset_config(name)


def _model_section(preset):
    return ConfigDict({"model": {"path": None, "preset": preset, "overrides": {},
                                 "dtype": "bfloat16", "param_dtype": "float32",
                                 "remat_policy": "full", "scan_layers": True}})


def test_real_preset_keeps_its_vocabulary_without_a_tokenizer():
    config = build.build_model_config(_model_section("llama-3.1-70b"), None)
    assert (config.vocab_size, config.num_layers, config.dtype) == (128256, 80, "bfloat16")
    assert config.scan_layers and config.remat_policy == "full"


def test_unknown_preset_names_the_known_ones():
    with pytest.raises(ValueError, match="llama-3.1-70b"):
        build.build_model_config(_model_section("llama-9"), None)


def test_model_path_and_preset_together_is_an_error():
    section = _model_section("llama-3.1-8b")
    section.model.path = "/somewhere"
    with pytest.raises(ConfigError, match="model.path and model.preset"):
        build.build_model_config(section, None)
