"""Training algorithms: one small module each, run by the one lifecycle `jaxreason.train.run`.

An algorithm (see `base.Algorithm`) holds only what is its own: its config checks, its data
source and batches, its loss (from `jaxreason.losses`), an optional pre-step and its updates per
step. Registered by name, lazily, so a run imports only the algorithm it runs.
"""

from __future__ import annotations

from typing import Any

from jaxreason.registry import Registry

ALGORITHMS: Registry[Any] = Registry("algorithm")
ALGORITHMS.register("sft", "jaxreason.algorithms.sft:SFT")
ALGORITHMS.register("grpo", "jaxreason.algorithms.grpo:GRPO")
ALGORITHMS.register("dpo", "jaxreason.algorithms.dpo:DPO")
ALGORITHMS.register("ppo", "jaxreason.algorithms.ppo:PPO")
ALGORITHMS.register("reward_model", "jaxreason.algorithms.reward_model:RewardModel")


def get_algorithm(name: str) -> Any:
    """The algorithm class registered as `name` (instantiate one per run)."""
    return ALGORITHMS.get(name)


def algorithm_names() -> list[str]:
    return ALGORITHMS.names()
