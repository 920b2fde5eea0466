"""What an algorithm module provides to the one run lifecycle (`jaxreason.train.run`).

The lifecycle owns everything every method shares: processes, mesh, tokenizer, model config,
optimizer, checkpoints, metrics, the step loop, SIGTERM, evaluation and export. An algorithm
owns only what is its own, in the order the lifecycle asks for it:

1. `check_config(config)`: its section's values (errors name the key).
2. `load_data(config) -> Data`: its training source (kept on the instance) plus the
   held-out records and the task that grades them.
3. `tokenizer_texts()`: texts to train a tiny tokenizer on (CPU recipes).
4. `prepare(ctx) -> iterator`: after the tokenizer and model config exist: its data iterator
   (checkpointed with the state, so a resumed run sees the same data) and its step count.
5. `num_steps`, `updates_per_step`, `row_length`: the optimizer's horizon is
   num_steps x updates_per_step; row_length sizes the FLOPs estimate.
6. `loss(ctx)`: its objective from the `jaxreason.losses` registry with its config bound;
   `pre_step(ctx)` / `frozen_params(ctx)`: an optional pre-step (old / reference log-probs)
   and the frozen parameters it reads; `num_iterations` x `num_minibatches` updates.
7. `start(ctx, state)`: objects that need the initial state (a sampler).
8. `next_batch(state)`: the host batch of the next step (numpy rows built by
   `jaxreason.data.rows`), or None when the data is exhausted.

Optional, for methods that train something other than the language model: `param_tree`
(the trained parameter tree, `train.state.ParamTree`; a reward model's backbone + scalar
head), `initial_params(ctx)` (its step-0 parameters from `model.path`), `export(ctx, params,
directory)` (its Hugging Face directory), `optimizer(config, updates)` and
`policy_params(params)` (the language model evaluation samples from).

SFT and GRPO implement it (`algorithms/sft.py`, `algorithms/grpo.py`); DPO, PPO and SRL are
meant to be one such module each plus a loss, a config section and a registry line.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Iterable

from jaxreason.data.tokenize import ExampleFormat
from jaxreason.train.errors import ConfigError
from jaxreason.train.state import LANGUAGE_MODEL, ParamTree
from jaxreason.train.step import ParamsLoss, PreStep


@dataclasses.dataclass
class Data:
    """held_out: records evaluation grades (may be empty); eval_task: the task that grades
    them (None: no evaluation)."""

    held_out: list[dict[str, Any]]
    eval_task: Any


@dataclasses.dataclass
class RunContext:
    """What the lifecycle has built when an algorithm prepares its batches and loss."""

    config: Any
    workdir: str
    mesh: Any
    tokenizer: Any
    model_config: Any


def one_of(key: str, value: Any, allowed: Iterable[Any]) -> None:
    """ConfigError naming `key` unless `value` is one of `allowed`."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ConfigError(f"{key}: {value!r} is not one of {allowed}")


def check_train_source(config: Any, what: str = "a data file / directory") -> None:
    if not config.data.train and not config.data.generator:
        raise ConfigError(f"data.train: set {what}, or data.generator")
    if config.data.train and not os.path.exists(config.data.train):
        raise ConfigError(f"data.train: {config.data.train!r} does not exist")


def check_batch_shape(config: Any) -> None:
    """The checks of a trainer that batches rows itself: positive batch size and row length,
    and a step count or an epoch count."""
    for key in ("train.batch_size", "data.max_length"):
        section, name = key.split(".")
        if config[section][name] < 1:
            raise ConfigError(f"{key}: must be >= 1, got {config[section][name]}")
    if config.train.num_steps <= 0 and not config.data.num_epochs:
        raise ConfigError("train.num_steps: <= 0 means 'one pass over data.num_epochs', "
                          "so data.num_epochs must be set")


def check_record_file_source(config: Any, trainer: str, records: str) -> None:
    """The checks of a trainer that reads its rows from one records file (`data.train`), not
    a generator: `check_batch_shape`, and a file that exists. `records` says what the file
    holds (for the error)."""
    check_batch_shape(config)
    if config.data.generator:
        raise ConfigError(f"data.generator: the {trainer} trainer reads {records} from "
                          f"data.train")
    if not config.data.train:
        raise ConfigError(f"data.train: set {records}")
    if not os.path.exists(config.data.train):
        raise ConfigError(f"data.train: {config.data.train!r} does not exist")


def position_batches(config: Any, positions: list[Any], rows: int) -> tuple[Any, int]:
    """The resumable batch iterator over items placed by `positions` (`data.pairs.pair_batches`:
    preference pairs, reward-model records) and the step count: `train.num_steps`, or with
    <= 0 one pass over `data.num_epochs` (the fewest batches of any process)."""
    import jax
    import numpy as np

    from jaxreason.data.pairs import pair_batches

    num_epochs = config.data.num_epochs or None

    def batches() -> Any:
        return pair_batches(len(positions), positions, rows=rows,
                            length=int(config.data.max_length),
                            packing=bool(config.data.packing), seed=int(config.seed),
                            shuffle=bool(config.data.shuffle), num_epochs=num_epochs,
                            shard_index=jax.process_index(), shard_count=jax.process_count())

    steps = int(config.train.num_steps)
    if steps <= 0:
        steps = sum(1 for _ in batches())
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            steps = int(np.min(multihost_utils.process_allgather(np.asarray(steps))))
    return iter(batches()), steps


def example_format(config: Any) -> ExampleFormat:
    """The record -> tokens format of the `data` section (its `prompt_format` also renders
    sampled prompts, so GRPO and evaluation see the context SFT trained on)."""
    d = config.data
    return ExampleFormat(prompt_field=d.prompt_field, completion_field=d.completion_field,
                         chat=bool(d.chat), loss_on=d.loss_on, add_bos=bool(d.add_bos),
                         add_eos=bool(d.add_eos), max_length=int(d.max_length))


def get_task(config: Any, key: str, **options: Any) -> Any:
    """The task named by config key `key` ("section.name"), or None when it is unset."""
    from jaxreason import tasks

    section, name = key.split(".")
    if not config[section][name]:
        return None
    try:
        return tasks.get(config[section][name], **options)
    except (KeyError, ValueError, TypeError) as e:
        raise ConfigError(f"{key}: {e.args[0]}") from None


class Algorithm:
    """Base class: defaults for the optional parts (one update per step, no pre-step)."""

    name: str = ""
    evaluate_at_start: bool = False  # grade the held-out records before step 1
    param_tree: ParamTree = LANGUAGE_MODEL  # what the state's parameters are
    num_iterations: int = 1
    num_minibatches: int = 1

    def check_config(self, config: Any) -> None:
        pass

    def load_data(self, config: Any) -> Data:
        raise NotImplementedError

    def tokenizer_texts(self) -> list[str]:
        raise NotImplementedError

    def prepare(self, ctx: RunContext) -> Any:
        raise NotImplementedError

    @property
    def num_steps(self) -> int:
        raise NotImplementedError

    @property
    def updates_per_step(self) -> int:
        return self.num_iterations * self.num_minibatches

    @property
    def row_length(self) -> int:
        raise NotImplementedError

    def loss(self, ctx: RunContext) -> ParamsLoss:
        raise NotImplementedError

    def pre_step(self, ctx: RunContext) -> PreStep | None:
        return None

    def frozen_params(self, ctx: RunContext) -> Any:
        return None

    def initial_params(self, ctx: RunContext) -> Any:
        """Step-0 parameters of `param_tree` placed on the mesh, or None for random ones
        (default: the language model of `model.path`)."""
        from jaxreason.train import build

        return build.initial_params(ctx.config, ctx.model_config, ctx.mesh)

    def export(self, ctx: RunContext, params: Any, directory: str) -> None:
        """Write the trained parameters as a Hugging Face directory (default: the language
        model and its tokenizer)."""
        from jaxreason.train.run import export_model

        export_model(ctx.model_config, params, ctx.tokenizer, directory,
                     dtype=ctx.config.checkpoint.export_dtype)

    def optimizer(self, config: Any, total_updates: int) -> tuple[Any, Any]:
        """(optimizer over `param_tree`, the schedule logged as the learning rate); default:
        AdamW of `config.optim` over every parameter (PPO: separate actor / critic rates)."""
        from jaxreason.train.optim import make_optimizer

        return make_optimizer(config.optim, total_updates)

    def policy_params(self, params: Any) -> Any:
        """The language model inside the state's parameters, the one evaluation samples from
        (default: the parameters themselves; PPO: the actor of actor + critic)."""
        return params

    def eval_stop(self) -> tuple[str, ...]:
        """Stop strings of evaluation sampling (the ones training samples with)."""
        return ()

    def start(self, ctx: RunContext, state: Any) -> None:
        pass

    def next_batch(self, state: Any) -> dict[str, Any] | None:
        raise NotImplementedError
