"""A tiny trained Countdown model (SFT through the real lifecycle) and its held-out file, shared
by the evaluation-suite tests."""

from __future__ import annotations

import json
import pathlib

from configs import base


def tiny_sft_config(num_steps: int = 30):
    c = base.get_config()
    c.model.preset = "llama-tiny"
    c.model.overrides.hidden_size = 32
    c.model.overrides.intermediate_size = 64
    c.model.overrides.num_layers = 1
    c.model.overrides.num_heads = 2
    c.model.overrides.num_kv_heads = 1
    c.model.overrides.head_dim = 16
    c.tokenizer.train_vocab_size = 300
    c.data.generator = "countdown"
    c.data.generator_options.num_train = 256
    c.data.generator_options.num_eval = 20
    c.data.task = "countdown"
    c.data.chat = True
    c.data.max_length = 384
    c.train.batch_size = 8  # divisible by the 8 simulated test devices
    c.train.num_steps = num_steps
    c.train.logprob_chunk_size = 64
    c.optim.learning_rate = 3e-3
    c.checkpoint.every = 0
    c.log.every = 0
    c.log.progress = False
    c.log.tensorboard = False
    c.eval.task = "countdown"
    c.eval.max_new_tokens = 24
    c.eval.batch_size = 8
    c.eval.grading_workers = 0
    return c


def write_held_out(config, path: pathlib.Path) -> pathlib.Path:
    from jaxreason.train import build

    _, held_out = build.generated_records(config)
    path.write_text("".join(json.dumps(r) + "\n" for r in held_out))
    return path


def eval_config(model_path: str, data_path: str, **settings):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "eval_countdown", pathlib.Path(__file__).resolve().parents[2] / "configs" / "eval" /
        "countdown.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    c = module.get_config()
    c.model.path = model_path
    c.suite.countdown_test.path = data_path
    c.log.progress = False
    c.eval.batch_size = 8
    for key, value in settings.items():
        c.suite.countdown_test[key] = value
    return c
