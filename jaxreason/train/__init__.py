"""Training loops and their shared core (state, optimizer, step, checkpoints, metrics).

Trainers are looked up by name (`config.trainer`); each is `train(config, workdir) -> summary`.
The registry holds import paths so that `launch/train.py` loads only the trainer it runs;
later trainers (GRPO, RPO, the ASTRO pipeline) add one line here or call `register_trainer`.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

_TRAINERS: dict[str, str] = {
    "sft": "jaxreason.train.sft:train",
    "grpo": "jaxreason.train.grpo:train",
    "pipeline": "jaxreason.train.pipeline:train",
    "records": "jaxreason.train.data_stages:records",  # data stages
    "sample": "jaxreason.train.data_stages:sample",
}


def register_trainer(name: str, target: str) -> None:
    """Make `"module.path:function"` runnable as `config.trainer = name`."""
    if name in _TRAINERS and _TRAINERS[name] != target:
        raise ValueError(f"trainer {name!r} is already registered as {_TRAINERS[name]}")
    _TRAINERS[name] = target


def trainer_names() -> list[str]:
    return sorted(_TRAINERS)


def get_trainer(name: str) -> Callable[[Any, str], dict[str, Any]]:
    if name not in _TRAINERS:
        raise KeyError(f"unknown trainer {name!r}; known: {trainer_names()}")
    module, function = _TRAINERS[name].split(":")
    return getattr(importlib.import_module(module), function)
