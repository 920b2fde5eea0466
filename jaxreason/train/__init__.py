"""Training: the one run lifecycle (`run.py`), its shared core (state, optimizer, step,
Orbax checkpoints, metrics, loop) and the trainer registry of the launcher.

A trainer is `train(config, workdir) -> summary` chosen by `config.trainer`. "sft" and "grpo"
are `run.run(config, workdir, <algorithm>)`; "pipeline" runs stages of trainers. Entries are
"module:function" import paths resolved on first use, so `launch/train.py` loads only the
trainer it runs; a new method registers its algorithm (`jaxreason.algorithms`) and one line
here, or calls `register_trainer`.
"""

from __future__ import annotations

from typing import Any, Callable

from jaxreason.registry import Registry

Trainer = Callable[[Any, str], dict[str, Any]]
TRAINERS: Registry[Trainer] = Registry("trainer")
TRAINERS.register("sft", "jaxreason.train.run:sft")
TRAINERS.register("grpo", "jaxreason.train.run:grpo")
TRAINERS.register("dpo", "jaxreason.algorithms.dpo:train")  # DPO / DPO+NLL / IPO / ORPO
TRAINERS.register("ppo", "jaxreason.algorithms.ppo:train")  # PPO with a critic
TRAINERS.register("reward_model", "jaxreason.algorithms.reward_model:train")  # ORM / BT / PRM
TRAINERS.register("prm_labels", "jaxreason.search.prm_labels:prm_labels")  # trees -> PRM data
TRAINERS.register("rm_eval", "jaxreason.train.rm_eval:rm_eval")  # AUC, BoN vs beam
TRAINERS.register("pipeline", "jaxreason.train.pipeline:train")
TRAINERS.register("records", "jaxreason.train.data_stages:records")  # data stages
TRAINERS.register("sample", "jaxreason.train.data_stages:sample")
TRAINERS.register("pairs", "jaxreason.train.preference_data:pairs")  # Iterative RPO pairs
TRAINERS.register("evaluate", "jaxreason.train.eval_suite:evaluate")  # a benchmark suite
TRAINERS.register("scaling", "jaxreason.train.eval_suite:scaling")  # test-time scaling curves
TRAINERS.register("step_data", "jaxreason.search.stages:step_data")  # ASTRO data stages
TRAINERS.register("search", "jaxreason.search.stages:search")
TRAINERS.register("clone", "jaxreason.search.stages:clone")
TRAINERS.register("srl_steps", "jaxreason.train.srl_data:srl_steps")  # SRL step instances
TRAINERS.register("hard_split", "jaxreason.train.srl_data:hard_split")  # pass@n = 0 records
TRAINERS.register("priming_study", "jaxreason.train.priming_study:train")  # behaviors study
TRAINERS.register("behavior_tokenizer", "jaxreason.train.priming_study:behavior_tokenizer")


def register_trainer(name: str, target: str | Trainer) -> None:
    """Make `"module.path:function"` (or a function) runnable as `config.trainer = name`;
    a different trainer under a registered name raises ValueError."""
    TRAINERS.register(name, target)


def trainer_names() -> list[str]:
    return TRAINERS.names()


def get_trainer(name: str) -> Trainer:
    return TRAINERS.get(name)
