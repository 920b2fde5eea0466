"""GRPO with verifiable rewards: the online-RL algorithm (ASTRO-RL, RLVR; SRL swaps the reward).

One step: draw prompts -> `group_size` samples each from the current policy, graded by the
task (or a custom reward function) through `jaxreason.generation` (so the text that earns the
reward is the text evaluation grades, cut at `grpo.stop` by one rule) -> dynamic sampling
drops groups whose rewards carry no signal and draws more prompts until the batch is full (up
to `max_sampling_rounds`; the shortfall is filled with dropped groups that carry no loss) ->
advantages by the estimator `grpo.advantage` -> rows (`data.rows.completion_rows`) -> one
jitted step whose pre-step computes the old log-probs (only with more than one update per
step: with one update the ratio is 1 and the loss's own stop-gradient log-probs serve, so no
extra forward) and the reference log-probs (beta > 0), then `num_iterations` x
`num_minibatches` optimizer updates.

The prompt iterator is checkpointed with the state and the sampling seed is a function of
(seed, step, round, process), so a resumed run draws the same prompts and samples.
"""

from __future__ import annotations

import functools
import importlib
import os
from typing import Any

import jax

from jaxreason import losses
from jaxreason.advantages import advantage_names
from jaxreason.algorithms.base import (Algorithm, Data, RunContext, check_train_source,
                                       example_format, one_of)
from jaxreason.algorithms.rollouts import RolloutCollector, stop_strings
from jaxreason.generation import RewardFn
from jaxreason.model import lora
from jaxreason.train import build
from jaxreason.train.errors import ConfigError
from jaxreason.train.state import random_params
from jaxreason.train.step import ParamsLoss, PreStep, map_microbatches


class GRPO(Algorithm):
    name = "grpo"
    evaluate_at_start = True

    def check_config(self, config: Any) -> None:
        g = config.grpo
        one_of("grpo.normalizer", g.normalizer, losses.GRPO_NORMALIZERS)
        one_of("grpo.advantage", g.advantage, advantage_names())
        if not g.normalize_std and g.advantage != "grpo":
            raise ConfigError(f"grpo.normalize_std: False only applies to grpo.advantage "
                              f"'grpo' (it selects 'dr_grpo'); got advantage {g.advantage!r}")
        for key in ("prompts_per_step", "group_size", "max_new_tokens", "max_prompt_tokens",
                    "num_iterations", "num_minibatches", "max_sampling_rounds"):
            if g[key] < 1:
                raise ConfigError(f"grpo.{key}: must be >= 1, got {g[key]}")
        if g.group_size < 2:
            raise ConfigError(f"grpo.group_size: group-relative advantages need >= 2 samples "
                              f"per prompt, got {g.group_size}")
        if g.epsilon_low < 0 or g.epsilon_high < 0 or g.beta < 0:
            raise ConfigError("grpo.epsilon_low / epsilon_high / beta: must be >= 0")
        if g.reward_fn and g.reward_model:
            raise ConfigError("grpo.reward_fn / grpo.reward_model: set one reward, not both")
        if g.reward_model and not os.path.isdir(g.reward_model):
            raise ConfigError(f"grpo.reward_model: directory {g.reward_model!r} does not exist "
                              f"(expected the export of a reward_model run)")
        if not (g.task or config.data.task or g.reward_fn or g.reward_model):
            raise ConfigError("grpo.task: set a task (or data.task) to grade completions, or "
                              "grpo.reward_fn ('module:function')")
        rows = g.prompts_per_step * g.group_size
        if rows % g.num_minibatches:
            raise ConfigError(f"grpo.num_minibatches: {g.num_minibatches} does not divide the "
                              f"{rows} completions of a step")
        if g.prompts_per_step % jax.process_count():
            raise ConfigError(f"grpo.prompts_per_step: {g.prompts_per_step} must be divisible "
                              f"by the {jax.process_count()} processes")
        check_train_source(config, "a prompt file / directory")
        self.g, self.seed = g, int(config.seed)
        self.num_iterations, self.num_minibatches = g.num_iterations, g.num_minibatches
        self.fmt = example_format(config).prompt_format

    def load_data(self, config: Any) -> Data:
        from jaxreason.data import readers

        self.task = build_task(config)
        self.reward_fn = load_reward_fn(self.g.reward_fn) if self.g.reward_fn else None
        if self.g.reward_model:
            self.reward_fn = reward_model_fn(self.g.reward_model, self.task)
        generated: list[dict[str, Any]] = []
        if config.data.generator:
            self.records, generated = build.generated_records(config)
        else:
            required = (self.task.required_fields if self.task is not None
                        else (config.data.prompt_field,))
            self.records = readers.read_records(config.data.train, required_fields=required)
        return Data(build.held_out_records(config, self.task, generated), self.task)

    def tokenizer_texts(self) -> list[str]:
        task = self.task
        return [str(task.prompt(r) if task is not None else r[self.fmt.prompt_field])
                for r in self.records]

    def prepare(self, ctx: RunContext) -> Any:
        from jaxreason.data import readers

        c = ctx.config
        prompts = readers.make_iter_dataset(
            self.records, seed=c.seed, shuffle=bool(c.data.shuffle), num_epochs=None,
            shard_index=jax.process_index(), shard_count=jax.process_count())
        self.iterator = iter(prompts)
        self._num_steps = int(c.train.num_steps)
        return self.iterator

    @property
    def num_steps(self) -> int:
        return self._num_steps

    @property
    def row_length(self) -> int:
        return self.g.max_prompt_tokens + self.g.max_new_tokens

    def loss(self, ctx: RunContext) -> ParamsLoss:
        g = self.g
        loss_fn = functools.partial(
            losses.get_loss("grpo"), config=ctx.model_config, epsilon_low=g.epsilon_low,
            epsilon_high=g.epsilon_high, beta=g.beta, normalizer=g.normalizer,
            constant_normalizer=float(g.max_new_tokens),
            chunk_size=ctx.config.train.logprob_chunk_size)
        return lambda params, batch: loss_fn(params, batch=batch)

    def pre_step(self, ctx: RunContext) -> PreStep | None:
        return logprob_pre_step(ctx.model_config, old=self.updates_per_step > 1,
                                ref=self.g.beta > 0,
                                num_microbatches=ctx.config.train.num_microbatches)

    def frozen_params(self, ctx: RunContext) -> Any:
        if self.g.beta <= 0 or ctx.model_config.lora is not None:
            return None  # LoRA: the reference is the state's own frozen base, no second copy
        return reference_params(ctx)

    def eval_stop(self) -> tuple[str, ...]:
        return stop_strings(self.g)

    def start(self, ctx: RunContext, state: Any) -> None:
        from jaxreason.model.model import Model
        from jaxreason.sampling import Sampler

        g = self.g
        sampler = Sampler(Model(ctx.model_config, state.params, ctx.mesh), ctx.tokenizer,
                          prompt_buckets=(g.max_prompt_tokens,),
                          new_token_buckets=(g.max_new_tokens,),
                          max_kv_cache_bytes=ctx.config.sampling.max_kv_cache_bytes)
        self.collector = RolloutCollector(ctx.config, sampler, ctx.tokenizer, self.task,
                                          self.reward_fn, self.iterator, self.fmt)

    def next_batch(self, state: Any) -> dict[str, Any]:
        rollouts = self.collector.collect(state.params, int(jax.device_get(state.step)))
        return {**rollouts.rows, "host_metrics": rollouts.metrics}


# ----------------------------------------------------------------------------- config

def reference_params(ctx: RunContext) -> Any:
    """The frozen reference of a KL penalty: the run's start model (`model.path`), or for a
    random preset the policy's step-0 parameters (the same seed gives the same values)."""
    ref = build.initial_params(ctx.config, ctx.model_config, ctx.mesh)
    if ref is None:
        ref = random_params(ctx.model_config, ctx.mesh, seed=int(ctx.config.seed))
    return ref


def logprob_pre_step(model_config: Any, *, old: bool, ref: bool,
                     num_microbatches: int = 1) -> PreStep | None:
    """The pre-step of policy-gradient methods: old log-probs from the sampling-time
    parameters (needed only with more than one update per step) and reference log-probs from
    the frozen parameters (KL, beta > 0) or, with none (a LoRA model), from the parameters'
    own base without adapters; None when neither is needed (no extra forward). The forwards
    run `num_microbatches` rows-parts at a time, like the updates, so the pre-step never holds
    more activations than one micro-batch's."""
    if not (old or ref):
        return None

    def pre(params: Any, frozen: Any, batch: dict[str, Any]) -> dict[str, Any]:
        def logprobs(rows: dict[str, Any]) -> dict[str, Any]:
            out = {}
            if old:
                out["old_logprobs"] = losses.batch_token_logprobs(params, model_config, rows)
            if ref:
                reference = frozen if frozen is not None else lora.split(params)[0]
                out["ref_logprobs"] = losses.batch_token_logprobs(reference, model_config, rows)
            return out
        return map_microbatches(logprobs, batch, num_microbatches)
    return pre


def load_reward_fn(path: str) -> RewardFn:
    """`"package.module:function"` -> the function; it gets (records, completions) and returns
    one float per completion."""
    if ":" not in path:
        raise ConfigError(f"grpo.reward_fn: {path!r} is not of the form 'module:function'")
    module_name, name = path.split(":", 1)
    try:
        fn = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"grpo.reward_fn: cannot load {path!r}: {e}") from None
    if not callable(fn):
        raise ConfigError(f"grpo.reward_fn: {path!r} is not callable")
    return fn


def reward_model_fn(directory: str, task: Any) -> RewardFn:
    """The reward of a trained reward model (the `reward_model` trainer's export): its
    aggregated score in [0, 1] of each completion under its record's prompt (rendered by
    `task`, or the record's prompt field), from `evaluation.reward_scoring`, the scorer of
    best-of-N and beam search too."""
    from jaxreason.evaluation.reward_scoring import RewardModelScorer

    try:
        scorer = RewardModelScorer(directory)
    except FileNotFoundError as e:
        raise ConfigError(f"grpo.reward_model: {e}") from None
    return scorer.reward_fn(task)


def build_task(config: Any) -> Any:
    """The task that formats prompts and grades completions, with the reward preset."""
    from jaxreason import tasks

    name = config.grpo.task or config.data.task
    if not name:
        return None
    options: dict[str, Any] = {}
    if config.grpo.reward:
        options["reward"] = config.grpo.reward
    try:
        return tasks.get(name, **options)
    except (KeyError, ValueError, TypeError) as e:
        raise ConfigError(f"grpo.task / grpo.reward: {e}") from None
