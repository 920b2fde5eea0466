"""Every recipe in configs/ loads, passes its trainer's checks and builds its model config.

Recipes are discovered from the directory, so a new one is covered without editing this file.
Paths that only exist on the recipe's cluster are replaced: `model.path` by a directory holding a
public config.json fixture (tests/fixtures/hf_configs: Qwen2.5-7B for Qwen recipes, Llama-3.1-8B
otherwise), data files by a small jsonl. A pipeline recipe is checked stage by stage.
"""

from __future__ import annotations

import importlib
import json
import math
import shutil
import sys
from pathlib import Path

import jax
import pytest

from jaxreason.model.quantize import QuantizedWeight

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "hf_configs"
RECIPES = sorted(p.stem for p in (REPO / "configs").glob("*.py") if p.stem not in ("__init__", "base"))


class FakeTokenizer:
    """What build_model_config reads from a tokenizer."""

    bos_token_id, eos_token_id, pad_token_id = 1, 2, 0

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size


def _load(name: str):
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return importlib.import_module(f"configs.{name}").get_config()


def _localize(config, tmp_path: Path) -> None:
    """Point cluster paths at local stand-ins (only the fields that name files)."""
    data = tmp_path / "records.jsonl"
    data.write_text(json.dumps({"problem": "1+1?", "solution": "\\boxed{2}", "question": "q",
                                "answer": "#### 2"}) + "\n")
    with config.unlocked():
        if config.model.path:
            fixture = "qwen2.5-7b-instruct" if "qwen" in config.model.path.lower() else "llama-3.1-8b"
            model_dir = tmp_path / "model"
            model_dir.mkdir(exist_ok=True)
            shutil.copy(FIXTURES / f"{fixture}.json", model_dir / "config.json")
            config.model.path = str(model_dir)
        for section, key in (("data", "train"), ("eval", "data")):
            if config[section][key]:
                config[section][key] = str(data)


def _stages(config):
    """(trainer, config) of each model-training stage; a pipeline is validated first."""
    if config.trainer == "priming_study":  # one pipeline per seed over the chosen arms
        from jaxreason.train import priming_study
        config = priming_study.study_pipeline(config, priming_study.parse_arms(config),
                                              config.seed)
    if config.trainer != "pipeline":
        return [(config.trainer, config)]
    from jaxreason.train import pipeline
    runs = pipeline.parse_stages(config.pipeline.stages)
    pipeline.validate(config, runs)
    stages = []
    for run in runs:
        stage = pipeline.stage_config(config, run, None)
        # as the pipeline does once references resolve: a stage naming its own model drops
        # the recipe's preset and uses that model's tokenizer
        pipeline._use_model_tokenizer(stage, pipeline._overrides(config, run.name))
        stages.append(stage)
    return [(stage.trainer, stage) for stage in stages]


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_loads_validates_and_builds_its_model_config(name, tmp_path):
    from jaxreason.algorithms import algorithm_names, get_algorithm
    from jaxreason.model import llama
    from jaxreason.train import build, run, trainer_names

    config = _load(name)
    assert config.trainer in trainer_names()
    built = 0
    for trainer, stage_config in _stages(config):
        if trainer not in algorithm_names():  # a data stage: no model to build
            continue
        _localize(stage_config, tmp_path)
        run.check_config(stage_config)
        get_algorithm(trainer)().check_config(stage_config)
        vocab = stage_config.tokenizer.train_vocab_size or 1000
        model_config = build.build_model_config(stage_config, FakeTokenizer(vocab))
        assert model_config.dtype == stage_config.model.dtype
        assert model_config.remat_policy == stage_config.model.remat_policy
        shapes = jax.eval_shape(lambda: llama.init_params(model_config, jax.random.key(0)))
        quantized = lambda x: isinstance(x, QuantizedWeight)  # QLoRA: codes stand for weights
        count = sum(math.prod(x.shape) for x in jax.tree.leaves(shapes, is_leaf=quantized))
        assert count == model_config.num_params > 0
        built += 1
        print(f"{name} [{trainer}]: {model_config.architecture}, {count / 1e6:.1f}M parameters")
    assert built >= 1


def test_every_recipe_file_is_covered():
    assert {"countdown_tiny", "sft_countdown_tiny", "sft_llama3_8b_math",
            "astro_rl_llama3_70b", "rlvr_qwen25_7b_math"} <= set(RECIPES)
