"""GRPO with verifiable rewards: the project's online-RL loop (ASTRO-RL, RLVR; SRL swaps the
reward). `train(config, workdir)` is the "grpo" trainer of the launcher.

One step: draw prompts -> `group_size` samples each from the current policy (our sampler, same
mesh, same parameters) -> grade them with the task (or a custom reward function) -> dynamic
sampling drops groups whose rewards carry no signal and samples more prompts until the batch is
full (up to `max_sampling_rounds`) -> group-relative advantages -> one jitted update that
computes the old log-probs with the training forward of the sampling-time parameters, then
runs `num_iterations` passes of `num_minibatches` optimizer updates.

The shared step loop (`train.loop`) checkpoints the train state together with the prompt
iterator, and the sampling seed is a function of (seed, step, round), so a resumed run draws
the same prompts and the same samples as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import logging
import os
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxreason import losses, parallel
from jaxreason.advantages import group_advantages, informative_groups
from jaxreason.data import batching
from jaxreason.model.model import Model
from jaxreason.train import build, sft
from jaxreason.train.errors import ConfigError
from jaxreason.train.evaluate import TaskEvaluator
from jaxreason.train.loop import LoopOptions, run_loop
from jaxreason.train.metrics import Throughput
from jaxreason.train.optim import make_optimizer
from jaxreason.train.rollout import rollout_rows
from jaxreason.train.state import TrainState, state_shardings
from jaxreason.train.step import batch_sharding, train_step

log = logging.getLogger(__name__)

RewardFn = Callable[[Sequence[dict[str, Any]], Sequence[str]], Sequence[float]]


# ----------------------------------------------------------------------------- config

def check_config(config: Any) -> None:
    """GRPO-specific values; each error names its key."""
    g = config.grpo
    sft._one_of("grpo.normalizer", g.normalizer, losses.GRPO_NORMALIZERS)
    for key in ("prompts_per_step", "group_size", "max_new_tokens", "max_prompt_tokens",
                "num_iterations", "num_minibatches", "max_sampling_rounds"):
        if g[key] < 1:
            raise ConfigError(f"grpo.{key}: must be >= 1, got {g[key]}")
    if g.group_size < 2:
        raise ConfigError(f"grpo.group_size: group-relative advantages need >= 2 samples per "
                          f"prompt, got {g.group_size}")
    if g.epsilon_low < 0 or g.epsilon_high < 0 or g.beta < 0:
        raise ConfigError("grpo.epsilon_low / epsilon_high / beta: must be >= 0")
    if not (g.task or config.data.task or g.reward_fn):
        raise ConfigError("grpo.task: set a task (or data.task) to grade completions, or "
                          "grpo.reward_fn ('module:function')")
    rows = g.prompts_per_step * g.group_size
    if rows % g.num_minibatches:
        raise ConfigError(f"grpo.num_minibatches: {g.num_minibatches} does not divide the "
                          f"{rows} completions of a step")
    if g.prompts_per_step % jax.process_count():
        raise ConfigError(f"grpo.prompts_per_step: {g.prompts_per_step} must be divisible by "
                          f"the {jax.process_count()} processes")
    if not config.data.train and not config.data.generator:
        raise ConfigError("data.train: set a prompt file / directory, or data.generator")
    if config.data.train and not os.path.exists(config.data.train):
        raise ConfigError(f"data.train: {config.data.train!r} does not exist")


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


# ----------------------------------------------------------------------------- update

def grpo_update(state: TrainState, batch: dict[str, jax.Array], ref_params: Any, *,
                model_config: Any, loss_fn: Callable[..., losses.LossOutput], optimizer: Any,
                schedule: Any,
                num_iterations: int, num_minibatches: int, num_microbatches: int,
                grad_shardings: Any = None) -> tuple[TrainState, dict[str, jax.Array]]:
    """One GRPO step (un-jitted): old (and reference) log-probs of the batch under the
    sampling-time (and frozen) parameters, then `num_iterations` x `num_minibatches` optimizer
    updates; `state.step` counts GRPO steps, the optimizer counts updates.

    With a single update per step the ratio is 1 at the update, so no separate forward is
    needed for the old log-probs: the loss uses its own (stop-gradient) log-probs."""
    batch = dict(batch)
    updates = num_iterations * num_minibatches
    if updates > 1:
        batch["old_logprobs"] = jax.lax.stop_gradient(
            losses.batch_token_logprobs(state.params, model_config, batch))
    if ref_params is not None:
        batch["ref_logprobs"] = jax.lax.stop_gradient(
            losses.batch_token_logprobs(ref_params, model_config, batch))
    start = state.step
    all_metrics = []
    for _ in range(num_iterations):
        for j in range(num_minibatches):
            minibatch = {k: v[j::num_minibatches] for k, v in batch.items()}
            state, metrics = train_step(
                state, minibatch, loss_fn=loss_fn, optimizer=optimizer,
                schedule=lambda _: schedule(start * updates),
                num_microbatches=num_microbatches, grad_shardings=grad_shardings)
            all_metrics.append(metrics)
    metrics = {k: jnp.mean(jnp.stack([m[k] for m in all_metrics])) for k in all_metrics[0]}
    for summed in ("tokens", "loss_tokens"):
        if summed in metrics:
            metrics[summed] = sum(m[summed] for m in all_metrics[:num_minibatches])
    return dataclasses.replace(state, step=start + 1), metrics


def make_grpo_update(model_config: Any, loss_fn: Callable[..., losses.LossOutput],
                     optimizer: Any, schedule: Any, *, mesh: Mesh, state_shardings: TrainState, num_iterations: int = 1,
                     num_minibatches: int = 1, num_microbatches: int = 1,
                     ref_params: Any = None, rules: parallel.LogicalRules | None = None
                     ) -> Callable[[TrainState, dict[str, jax.Array]],
                                   tuple[TrainState, dict[str, jax.Array]]]:
    """The jitted GRPO step `(state, batch) -> (state, metrics)`: explicit shardings, state
    donated, the frozen reference parameters (beta > 0) passed as an argument."""
    update = functools.partial(grpo_update, model_config=model_config, loss_fn=loss_fn,
                               optimizer=optimizer,
                               schedule=schedule, num_iterations=num_iterations,
                               num_minibatches=num_minibatches,
                               num_microbatches=num_microbatches,
                               grad_shardings=state_shardings.params)
    replicated = NamedSharding(mesh, PartitionSpec())
    ref_shardings = None if ref_params is None else state_shardings.params
    jitted = jax.jit(update, in_shardings=(state_shardings, batch_sharding(mesh), ref_shardings),
                     out_shardings=(state_shardings, replicated), donate_argnums=0)
    rules = tuple(rules) if rules is not None else parallel.DEFAULT_RULES

    def run(state: TrainState, batch: dict[str, jax.Array]) -> tuple[TrainState, Any]:
        with jax.set_mesh(mesh), parallel.logical_rules(rules):
            return jitted(state, batch, ref_params)
    return run


# ----------------------------------------------------------------------------- rollouts

@dataclasses.dataclass
class Rollouts:
    """What sampling and grading produced for one step (this process's share)."""

    rows: dict[str, np.ndarray]
    metrics: dict[str, float]


class RolloutCollector:
    """Samples, grades and filters groups until a step's batch is full."""

    def __init__(self, config: Any, sampler: Any, tokenizer: Any, task: Any,
                 reward_fn: RewardFn | None, prompt_iterator: Any, fmt: batching.SFTFormat
                 ) -> None:
        g = config.grpo
        self.g, self.seed = g, int(config.seed)
        self.sampler, self.tokenizer, self.task = sampler, tokenizer, task
        self.reward_fn, self.iterator, self.fmt = reward_fn, prompt_iterator, fmt
        self.prompts_per_step = g.prompts_per_step // jax.process_count()
        self.row_length = g.max_prompt_tokens + g.max_new_tokens
        self.stop = tuple(s for s in (g.stop or "").split("|") if s) if g.stop else ()

    def prompt_ids(self, record: dict[str, Any]) -> list[int]:
        prompt = (self.task.prompt(record, chat=self.fmt.chat) if self.task is not None
                  else record[self.fmt.prompt_field])
        ids = batching.prompt_token_ids(prompt, self.tokenizer, self.fmt)
        if len(ids) > self.g.max_prompt_tokens:
            raise ConfigError(f"grpo.max_prompt_tokens: a prompt has {len(ids)} tokens, more "
                              f"than {self.g.max_prompt_tokens}")
        return ids

    def rewards(self, records: Sequence[dict[str, Any]], texts: Sequence[str]
                ) -> tuple[np.ndarray, np.ndarray | None]:
        """(reward per completion, correct per completion or None for custom rewards)."""
        if self.reward_fn is not None:
            values = np.asarray(self.reward_fn(records, texts), np.float64)
            if values.shape != (len(texts),):
                raise ValueError(f"grpo.reward_fn returned {values.shape} values for "
                                 f"{len(texts)} completions")
            return values, None
        from jaxreason.tasks import grade_batch

        grades = grade_batch(self.task, records, texts, num_workers=self.g.grading_workers,
                             item_timeout_s=self.g.grading_timeout_s)
        return (np.array([g.reward for g in grades], np.float64),
                np.array([g.correct for g in grades], bool))

    def collect(self, params: Any, step: int) -> Rollouts:
        g, per_step = self.g, self.prompts_per_step
        sampling_time = grading_time = 0.0
        kept: list[dict[str, Any]] = []
        dropped: list[dict[str, Any]] = []
        sampled_groups = 0
        first_round: dict[str, np.ndarray] = {}
        rounds = 0
        while len(kept) < per_step and rounds < g.max_sampling_rounds:
            records = [next(self.iterator) for _ in range(per_step)]
            prompts = [self.prompt_ids(r) for r in records]
            sampling = self.sampling_params(step, rounds)
            start = time.perf_counter()
            out = self.sampler.generate_ids(prompts, sampling, params=params)
            sampling_time += time.perf_counter() - start
            texts = [self.tokenizer.decode(out.tokens[r, :out.lengths[r]],
                                           skip_special_tokens=True)
                     for r in range(out.tokens.shape[0])]
            start = time.perf_counter()
            rewards, correct = self.rewards([records[p] for p in out.prompt_index], texts)
            grading_time += time.perf_counter() - start
            rewards = rewards.reshape(per_step, g.group_size)
            keep = (informative_groups(rewards, min_std=g.min_group_std)
                    if g.dynamic_sampling else np.ones(per_step, bool))
            if rounds == 0:
                first_round = {"rewards": rewards, "lengths": out.lengths,
                               "correct": correct, "truncated": out.finish_codes == 0}
            for p in range(per_step):
                rows = slice(p * g.group_size, (p + 1) * g.group_size)
                group = {"prompt": prompts[p], "tokens": out.tokens[rows],
                         "lengths": out.lengths[rows], "finish": out.finish_codes[rows],
                         "raw_logprobs": out.raw_logprobs[rows], "rewards": rewards[p]}
                (kept if keep[p] else dropped).append(group)
            sampled_groups += per_step
            rounds += 1
        filler = max(0, per_step - len(kept))
        groups = kept[:per_step] + dropped[:filler]
        trainable_groups = np.array([True] * min(len(kept), per_step) + [False] * filler)
        return Rollouts(self.to_rows(groups, trainable_groups),
                        self.metrics(first_round, kept, sampled_groups, rounds, filler,
                                     sampling_time, grading_time))

    def sampling_params(self, step: int, round_index: int) -> Any:
        from jaxreason.sampling import SamplingParams

        g = self.g
        seed = (self.seed * 1_000_003 + step * 1_009 + round_index * 7 +
                jax.process_index() * 104_729) % (2 ** 31)
        return SamplingParams(temperature=g.temperature, top_p=g.top_p, top_k=g.top_k,
                              n=g.group_size, max_new_tokens=g.max_new_tokens, seed=seed,
                              stop=self.stop)

    def to_rows(self, groups: list[dict[str, Any]], trainable_groups: np.ndarray
                ) -> dict[str, np.ndarray]:
        g = self.g
        rewards = np.stack([grp["rewards"] for grp in groups])
        advantages = group_advantages(rewards, normalize_std=g.normalize_std)
        advantages[~trainable_groups] = 0.0
        finish = np.concatenate([grp["finish"] for grp in groups])
        trainable = np.repeat(trainable_groups, g.group_size)
        if g.mask_truncated:
            trainable &= finish != 0  # FINISH_LENGTH: cut off by the budget, no final answer
        return rollout_rows(
            [grp["prompt"] for grp in groups],
            np.concatenate([grp["tokens"] for grp in groups]),
            np.concatenate([grp["lengths"] for grp in groups]),
            np.repeat(np.arange(len(groups)), g.group_size),
            advantages.reshape(-1), length=self.row_length,
            pad_token_id=self.sampler.pad_token_id, trainable=trainable,
            sampler_logprobs=np.concatenate([grp["raw_logprobs"] for grp in groups]))

    def metrics(self, first: dict[str, Any], kept: list[Any], sampled_groups: int, rounds: int,
                filler: int, sampling_time: float, grading_time: float) -> dict[str, float]:
        """Reward / accuracy / length statistics of the first sampling round (an unbiased
        sample of the policy on fresh prompts), plus what dynamic sampling did."""
        rewards = first["rewards"]
        out = {
            "reward_mean": float(rewards.mean()), "reward_std": float(rewards.std()),
            "response_length_mean": float(first["lengths"].mean()),
            "response_length_max": float(first["lengths"].max()),
            "truncated_fraction": float(first["truncated"].mean()),
            "groups_filtered_fraction": 1.0 - len(kept) / max(sampled_groups, 1),
            "sampling_rounds": float(rounds), "filler_groups": float(filler),
            "sample_time": sampling_time, "grade_time": grading_time,
        }
        if first["correct"] is not None:
            out["accuracy"] = float(first["correct"].mean())
        return out


# ----------------------------------------------------------------------------- training

def prompt_source(config: Any, task: Any) -> tuple[Any, list[dict[str, Any]]]:
    """(prompt records for training, held-out records) from data.train or data.generator."""
    from jaxreason.data import readers

    generated: list[dict[str, Any]] = []
    if config.data.generator:
        records, generated = build.generated_records(config)
    else:
        required = task.required_fields if task is not None else (config.data.prompt_field,)
        records = readers.read_records(config.data.train, required_fields=required)
    held_out = build.held_out_records(config, task, generated)
    return records, held_out


def train(config: Any, workdir: str) -> dict[str, Any]:
    """Run (or resume) GRPO in `workdir`; returns the final train and eval metrics."""
    from jaxreason.data import readers
    from jaxreason.sampling import Sampler

    check_config(config)
    build.setup_distributed(config)
    mesh = build.build_mesh(config)
    os.makedirs(workdir, exist_ok=True)
    g = config.grpo
    fmt = sft.sft_format(config)
    task = build_task(config)
    reward_fn = load_reward_fn(g.reward_fn) if g.reward_fn else None
    records, held_out = prompt_source(config, task)
    tokenizer = build.build_tokenizer(config, workdir, lambda: [
        str(task.prompt(r) if task is not None else r[fmt.prompt_field]) for r in records])
    model_config = build.build_model_config(config, tokenizer)

    num_steps = config.train.num_steps
    updates = g.num_iterations * g.num_minibatches
    optimizer, schedule = make_optimizer(config.optim, num_steps * updates)
    prompts = readers.make_iter_dataset(records, seed=config.seed, shuffle=bool(config.data.shuffle),
                                        num_epochs=None, shard_index=jax.process_index(),
                                        shard_count=jax.process_count())
    iterator = iter(prompts)
    checkpointer, writer = build.run_outputs(config, workdir, num_steps)
    try:
        state = sft.initial_state(config, model_config, optimizer, mesh, checkpointer,
                                   iterator, writer)
        shardings = state_shardings(model_config, optimizer, mesh)
        ref_params = None
        if g.beta > 0:  # the frozen reference: the starting parameters
            ref_params = build.initial_params(config, model_config, mesh)
            if ref_params is None:
                raise ConfigError("grpo.beta > 0 needs a reference model: set model.path")
        grpo_loss = functools.partial(
            losses.get_loss("grpo"), config=model_config, epsilon_low=g.epsilon_low,
            epsilon_high=g.epsilon_high, beta=g.beta, normalizer=g.normalizer,
            constant_normalizer=float(g.max_new_tokens),
            chunk_size=config.train.logprob_chunk_size)
        update = make_grpo_update(model_config, lambda p, b: grpo_loss(p, batch=b), optimizer,
                                  schedule, mesh=mesh,
                                  state_shardings=shardings, num_iterations=g.num_iterations,
                                  num_minibatches=g.num_minibatches,
                                  num_microbatches=config.train.num_microbatches,
                                  ref_params=ref_params)
        sampler = Sampler(Model(model_config, state.params, mesh), tokenizer,
                          prompt_buckets=(g.max_prompt_tokens,),
                          new_token_buckets=(g.max_new_tokens,))
        collector = RolloutCollector(config, sampler, tokenizer, task, reward_fn, iterator, fmt)
        evaluator = None
        if task is not None and held_out:
            evaluator = TaskEvaluator(model_config, mesh, tokenizer, task, held_out, fmt,
                                      max_new_tokens=config.eval.max_new_tokens,
                                      batch_size=config.eval.batch_size,
                                      grading_workers=config.eval.grading_workers)
            if int(jax.device_get(state.step)) == 0:
                start_metrics = evaluator(state.params)
                writer.write(0, start_metrics, kind="eval")

        def next_batch(state: TrainState) -> dict[str, Any]:
            step = int(jax.device_get(state.step))
            rollouts = collector.collect(state.params, step)
            rows = rollouts.rows
            rows["host_metrics"] = rollouts.metrics
            return rows

        throughput = Throughput(model_config.flops_per_token(collector.row_length),
                                jax.device_count(), jax.devices()[0].device_kind)
        result = run_loop(
            state, step_fn=update, next_batch=next_batch, mesh=mesh,
            options=LoopOptions(num_steps=num_steps, save_every=config.checkpoint.every,
                                eval_every=config.eval.every),
            checkpointer=checkpointer, data_iterator=iterator,
            config_json=sft.config_to_json(config), writer=writer, throughput=throughput,
            workdir=workdir,
            evaluate=(lambda s: evaluator(s.params)) if evaluator is not None else None)
        return sft.finish_run(config, result, model_config, tokenizer, workdir, writer,
                              evaluator)
    finally:
        writer.close()
        checkpointer.close()

