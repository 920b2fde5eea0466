"""Which parameters a run trains: all of them, or only the LoRA adapters.

A language model whose parameter tree carries adapters (`model/lora.py`) trains the adapters
alone: gradients are taken with respect to them only (the base weights enter the loss as
constants, so no gradient of a 70B base is ever formed), the optimizer's state covers only
them, and checkpoints hold only them (plus the optimizer state and the step). Any other
parameter trains as before, so a tree that holds such a model beside other parameters (a
value model's backbone and its head, an actor and a critic) trains the adapters and the
rest. The rule is structural, so the state, the step and the checkpointer need no flag: they
call `trainable` / `with_trainable` on whatever tree they hold (parameters, their shardings
or their abstract shapes alike).
"""

from __future__ import annotations

from typing import Any

from jaxreason.model import lora


def trainable(params: Any) -> Any:
    """The part of `params` that trains: of every LoRA model in it, only
    `{"layers": {"lora": adapters}}`; every other parameter. A tree without adapters comes
    back whole (same structure)."""
    if not isinstance(params, dict):
        return params
    if lora.has_adapters(params):
        return {"layers": {"lora": params["layers"]["lora"]}}
    return {k: trainable(v) for k, v in params.items()}


def with_trainable(params: Any, new: Any) -> Any:
    """`params` with its trainable part replaced by `new` (the inverse of `trainable`)."""
    if not isinstance(params, dict):
        return new
    if lora.has_adapters(params):
        return lora.join(lora.split(params)[0], new["layers"]["lora"])
    return {k: with_trainable(v, new[k]) for k, v in params.items()}


def is_partial(params: Any) -> bool:
    """Whether some parameters are frozen (a LoRA model inside): checkpoints hold only part."""
    if not isinstance(params, dict):
        return False
    return lora.has_adapters(params) or any(is_partial(v) for v in params.values())
