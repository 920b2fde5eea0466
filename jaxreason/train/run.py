"""The one run lifecycle every trainer uses: `run(config, workdir, algorithm) -> summary`.

Config checks (common, then the algorithm's) -> processes and mesh -> the algorithm's data ->
tokenizer -> model config -> the algorithm's batches and step count -> optimizer (its horizon
is steps x updates per step) -> checkpointer and metrics writer -> the initial state (resumed
from the workdir, or a HF directory / preset) -> the one jitted step (`train.step`) with the
algorithm's loss and pre-step -> the step loop (checkpoints, SIGTERM, periodic evaluation) ->
the summary, the HF export and the final held-out evaluation.

An algorithm (`jaxreason.algorithms`) supplies only what is its own (see
`jaxreason.algorithms.base`). `sft` and `grpo` below are the launcher's trainers.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Callable

import jax

from jaxreason.algorithms.base import Algorithm, RunContext, example_format, one_of
from jaxreason.model.config import ModelConfig
from jaxreason.model.model import Model, save_pretrained
from jaxreason.train import build
from jaxreason.train.checkpoint import Checkpointer
from jaxreason.train.errors import ConfigError
from jaxreason.train.evaluate import TaskEvaluator
from jaxreason.train.loop import LoopOptions, run_loop
from jaxreason.train.metrics import MetricsWriter, Throughput
from jaxreason.train.optim import SCHEDULES
from jaxreason.train.state import (LANGUAGE_MODEL, ParamTree, abstract_state, init_state,
                                   random_params, state_shardings)
from jaxreason.train.step import make_train_step
from jaxreason.train.trainable import is_partial

log = logging.getLogger(__name__)

EXPORT_DIR = "export"  # inside the workdir: the final model as a HF directory


def check_config(config: Any) -> None:
    """Values every algorithm needs and the config types cannot check; errors name the key."""
    one_of("optim.schedule", config.optim.schedule, SCHEDULES)
    for key in ("train.num_microbatches", "train.logprob_chunk_size"):
        section, name = key.split(".")
        if config[section][name] < 1:
            raise ConfigError(f"{key}: must be >= 1, got {config[section][name]}")
    if config.model.path and not os.path.isdir(config.model.path):
        raise ConfigError(f"model.path: directory {config.model.path!r} does not exist "
                          f"(expected a local Hugging Face checkpoint directory)")
    if config.eval.data and not os.path.exists(config.eval.data):
        raise ConfigError(f"eval.data: {config.eval.data!r} does not exist")


def run(config: Any, workdir: str, algorithm: Algorithm | str) -> dict[str, Any]:
    """Run (or resume) `algorithm` in `workdir`; returns {status, step, train[, export, eval]}."""
    if isinstance(algorithm, str):
        from jaxreason.algorithms import get_algorithm

        algorithm = get_algorithm(algorithm)()
    check_config(config)
    algorithm.check_config(config)
    build.setup_distributed(config)
    mesh = build.build_mesh(config)
    os.makedirs(workdir, exist_ok=True)
    data = algorithm.load_data(config)
    tokenizer = build.build_tokenizer(config, workdir, algorithm.tokenizer_texts)
    model_config = build.build_model_config(config, tokenizer)
    ctx = RunContext(config, workdir, mesh, tokenizer, model_config)
    iterator = algorithm.prepare(ctx)
    num_steps = algorithm.num_steps
    optimizer, schedule = algorithm.optimizer(config, num_steps * algorithm.updates_per_step)
    checkpointer, writer = build.run_outputs(config, workdir, num_steps)
    try:
        tree = algorithm.param_tree
        state = initial_state(config, model_config, optimizer, mesh, checkpointer, iterator,
                              writer, tree=tree, load_params=lambda: algorithm.initial_params(ctx))
        step_fn = make_train_step(
            algorithm.loss(ctx), optimizer, schedule, mesh=mesh,
            state_shardings=state_shardings(model_config, optimizer, mesh, tree),
            num_microbatches=config.train.num_microbatches, pre_step=algorithm.pre_step(ctx),
            frozen=algorithm.frozen_params(ctx), num_iterations=algorithm.num_iterations,
            num_minibatches=algorithm.num_minibatches)
        algorithm.start(ctx, state)
        evaluator = None
        if data.eval_task is not None and data.held_out:
            task_evaluator = TaskEvaluator(
                model_config, mesh, tokenizer, data.eval_task, data.held_out,
                example_format(config).prompt_format, max_new_tokens=config.eval.max_new_tokens,
                batch_size=config.eval.batch_size, grading_workers=config.eval.grading_workers,
                stop=algorithm.eval_stop(), report_dir=os.path.join(workdir, "eval"))
            # grades the language model inside the state's parameters (PPO: the actor)
            evaluator = lambda params, step: task_evaluator(  # noqa: E731
                algorithm.policy_params(params), step=step)
            if algorithm.evaluate_at_start and int(jax.device_get(state.step)) == 0:
                writer.write(0, evaluator(state.params, step=0), kind="eval")
        throughput = Throughput(model_config.flops_per_token(algorithm.row_length),
                                jax.device_count(), jax.devices()[0].device_kind)
        result = run_loop(
            state, step_fn=step_fn, next_batch=algorithm.next_batch, mesh=mesh,
            options=LoopOptions(num_steps=num_steps, save_every=config.checkpoint.every,
                                eval_every=config.eval.every,
                                log_data_order=bool(config.log.data_order)),
            checkpointer=checkpointer, data_iterator=iterator,
            config_json=config_to_json(config), writer=writer, throughput=throughput,
            workdir=workdir,
            evaluate=((lambda s: evaluator(s.params, step=int(jax.device_get(s.step))))
                      if evaluator is not None else None))
        return finish_run(config, result, model_config, tokenizer, workdir, writer, evaluator,
                          export=lambda params, directory: algorithm.export(ctx, params,
                                                                            directory))
    finally:
        writer.close()
        checkpointer.close()


def sft(config: Any, workdir: str) -> dict[str, Any]:
    """The "sft" trainer."""
    return run(config, workdir, "sft")


def grpo(config: Any, workdir: str) -> dict[str, Any]:
    """The "grpo" trainer."""
    return run(config, workdir, "grpo")


def finish_run(config: Any, result: Any, model_config: ModelConfig, tokenizer: Any,
               workdir: str, writer: MetricsWriter, evaluator: Any,
               export: Callable[[Any, str], None] | None = None) -> dict[str, Any]:
    """The end of a run: the summary, then (unless preempted) the HF export (`export(params,
    directory)`, default: the language model and its tokenizer) and the final held-out
    evaluation."""
    summary: dict[str, Any] = {"status": result.status, "step": result.step,
                               "train": result.last_metrics}
    if result.status == "preempted":
        log.warning("preempted at step %d; checkpoint saved in %s", result.step, workdir)
        return summary
    if config.checkpoint.export_hf:
        directory = os.path.join(workdir, EXPORT_DIR)
        if export is None:
            export_model(model_config, result.state.params, tokenizer, directory,
                         dtype=config.checkpoint.export_dtype)
        else:
            export(result.state.params, directory)
        writer.event(result.step, "exported", path=directory)
        summary["export"] = directory
    if evaluator is not None:
        metrics = evaluator(result.state.params, step=result.step)
        writer.write(result.step, metrics, kind="eval")
        summary["eval"] = metrics
    return summary


def initial_state(config: Any, model_config: ModelConfig, optimizer: Any, mesh: Any,
                  checkpointer: Checkpointer, iterator: Any, writer: MetricsWriter, *,
                  tree: ParamTree = LANGUAGE_MODEL,
                  load_params: Callable[[], Any] | None = None) -> Any:
    """Resume from the latest checkpoint in the workdir (restoring `iterator` too), or start
    from step 0 around `load_params()` (default: `model.path`'s weights), or, when that gives
    None, around random parameters of `tree` (a preset)."""
    latest = checkpointer.latest_step()
    if latest is not None:
        changed = config_changes(checkpointer.saved_config(latest), config_to_json(config))
        if changed:
            log.warning("resuming with a config that differs from the checkpoint's in: %s",
                        ", ".join(changed))
        target = abstract_state(model_config, optimizer, mesh, tree)
        base = None
        if is_partial(target.params):  # LoRA: the checkpoint holds the adapters, not the base
            base = (load_params() if load_params is not None
                    else build.initial_params(config, model_config, mesh))
            if base is None:
                base = random_params(model_config, mesh, seed=config.seed, tree=tree)
        try:
            state, _ = checkpointer.restore(latest, target, iterator, base=base)
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(
                f"checkpoint: the train state saved at step {latest} in {checkpointer.directory} "
                f"does not fit this config (changed: {', '.join(changed) or 'nothing visible'}); "
                f"use a new --workdir or the config it was saved with ({e})".splitlines()[0]
            ) from None
        writer.event(latest, "resumed", checkpoint=latest)
        log.info("resumed from step %d", latest)
        return state
    params = (load_params() if load_params is not None
              else build.initial_params(config, model_config, mesh))
    writer.event(0, "started", num_params=model_config.num_params)
    return init_state(model_config, optimizer, mesh, seed=config.seed, params=params, tree=tree)


def config_to_json(config: Any) -> dict[str, Any]:
    return json.loads(config.to_json())


def config_changes(saved: dict[str, Any], current: dict[str, Any], prefix: str = ""
                   ) -> list[str]:
    """Dotted keys whose values differ between two config dicts."""
    keys = sorted(set(saved) | set(current))
    out = []
    for key in keys:
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(config_changes(a, b, f"{prefix}{key}."))
        elif a != b:
            out.append(f"{prefix}{key}")
    return out


def export_model(model_config: ModelConfig, params: Any, tokenizer: Any, directory: str, *,
                 dtype: str | None = None) -> None:
    """The trained model as a Hugging Face directory (config.json, safetensors, tokenizer)."""
    save_pretrained(Model(model_config, params), directory, dtype=dtype)
    if jax.process_index() == 0:
        tokenizer.save_pretrained(directory)
