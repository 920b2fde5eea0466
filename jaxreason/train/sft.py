"""Supervised fine-tuning: `train(config, workdir)`, the "sft" trainer of the launcher.

Records (a file, or a generator for CPU recipes) become packed or padded batches; the "sft"
loss from `jaxreason.losses` trains on completion tokens (or all tokens: ASTRO); the shared
loop checkpoints, resumes and logs; at the end the model is exported as a Hugging Face
directory and, when the config names a task, graded on held-out records.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any, Iterable

import jax
import numpy as np

from jaxreason import losses
from jaxreason.data import batching
from jaxreason.model.config import ModelConfig
from jaxreason.model.model import Model, save_pretrained
from jaxreason.train import build
from jaxreason.train.checkpoint import Checkpointer
from jaxreason.train.errors import ConfigError
from jaxreason.train.evaluate import TaskEvaluator
from jaxreason.train.loop import LoopOptions, run_loop
from jaxreason.train.metrics import MetricsWriter, Throughput
from jaxreason.train.optim import SCHEDULES, make_optimizer
from jaxreason.train.state import abstract_state, init_state, state_shardings
from jaxreason.train.step import make_train_step

log = logging.getLogger(__name__)

EXPORT_DIR = "export"  # inside the workdir: the final model as a HF directory


# ----------------------------------------------------------------------------- config checks

def _one_of(key: str, value: Any, allowed: Iterable[Any]) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ConfigError(f"{key}: {value!r} is not one of {allowed}")


def check_config(config: Any) -> None:
    """Values the config types cannot check; each error names its key."""
    _one_of("train.loss", config.train.loss, losses.loss_names())
    _one_of("train.averaging", config.train.averaging, losses.AVERAGING)
    _one_of("data.loss_on", config.data.loss_on, batching.LOSS_ON)
    _one_of("optim.schedule", config.optim.schedule, SCHEDULES)
    for key in ("train.batch_size", "train.num_microbatches", "data.max_length",
                "train.logprob_chunk_size"):
        section, name = key.split(".")
        if config[section][name] < 1:
            raise ConfigError(f"{key}: must be >= 1, got {config[section][name]}")
    if config.train.num_steps <= 0 and not config.data.num_epochs:
        raise ConfigError("train.num_steps: <= 0 means 'one pass over data.num_epochs', so "
                          "data.num_epochs must be set")
    if not config.data.train and not config.data.generator:
        raise ConfigError("data.train: set a data file / directory, or data.generator")
    if config.data.train and not os.path.exists(config.data.train):
        raise ConfigError(f"data.train: {config.data.train!r} does not exist")
    if config.model.path and not os.path.isdir(config.model.path):
        raise ConfigError(f"model.path: directory {config.model.path!r} does not exist "
                          f"(expected a local Hugging Face checkpoint directory)")
    if config.eval.data and not os.path.exists(config.eval.data):
        raise ConfigError(f"eval.data: {config.eval.data!r} does not exist")


def check_batch_layout(config: Any, mesh: Any) -> int:
    """Rows per process; the global batch must split over processes, micro-batches and the
    batch-sharded mesh axes."""
    rows, n = config.train.batch_size, config.train.num_microbatches
    shards = mesh.shape["data"] * mesh.shape["fsdp"]
    if rows % (n * shards):
        raise ConfigError(f"train.batch_size: {rows} rows must be divisible by "
                          f"train.num_microbatches ({n}) x mesh data*fsdp ({shards})")
    if rows % jax.process_count():
        raise ConfigError(f"train.batch_size: {rows} rows must be divisible by the "
                          f"{jax.process_count()} processes")
    return rows // jax.process_count()


# ----------------------------------------------------------------------------- data

def sft_format(config: Any) -> batching.SFTFormat:
    d = config.data
    return batching.SFTFormat(prompt_field=d.prompt_field, completion_field=d.completion_field,
                              chat=bool(d.chat), loss_on=d.loss_on, add_bos=bool(d.add_bos),
                              add_eos=bool(d.add_eos), max_length=int(d.max_length))


def load_data(config: Any) -> tuple[Any, list[dict[str, Any]], Any, Any]:
    """(train source, held-out eval records, task of the training records or None, task that
    grades the held-out records or None)."""
    from jaxreason import tasks

    def get_task(key: str) -> Any:
        section, name = key.split(".")
        if not config[section][name]:
            return None
        try:
            return tasks.get(config[section][name])
        except KeyError as e:
            raise ConfigError(f"{key}: {e.args[0]}") from None

    data_task = get_task("data.task")
    task = get_task("eval.task") or data_task  # grades the held-out records
    generated: list[dict[str, Any]] = []
    if config.data.generator:
        train, generated = build.generated_records(config)
    else:
        train = config.data.train
        _check_first_record(train, data_task, config)
    held_out = build.held_out_records(config, task, generated)
    return train, held_out, data_task, task


def _check_first_record(path: str, task: Any, config: Any) -> None:
    """Fail before any heavy work if the data lacks a needed field (the error names the file,
    line and field; later records are checked as they are read)."""
    from jaxreason.data import readers

    required = task.required_fields if task is not None else (config.data.prompt_field,
                                                               config.data.completion_field)
    first = readers.make_map_dataset(path, shuffle=False, num_epochs=1,
                                     required_fields=required)[0]
    if task is not None:
        try:
            batching.task_sft_record(first, task, bool(config.data.chat))
        except batching.RecordError as e:
            raise batching.RecordError(f"{path}: first record: {e}") from None


def training_texts(source: Any, task: Any, fmt: batching.SFTFormat, limit: int = 20000
                   ) -> list[str]:
    """Prompt + completion texts of the first `limit` records (to train a tiny tokenizer)."""
    from jaxreason.data import readers

    records = source if isinstance(source, list) else readers.read_records(source)
    texts = []
    for record in records[:limit]:
        if task is not None:
            record = batching.task_sft_record(record, task, fmt.chat)
            prompt, completion = record["prompt"], record["completion"]
        else:
            prompt, completion = record.get(fmt.prompt_field), record.get(fmt.completion_field)
        if isinstance(prompt, list):
            prompt = "\n".join(str(m.get("content", "")) for m in prompt)
        texts.append(f"{prompt}{completion}")
    return texts


def make_batches(config: Any, source: Any, tokenizer: Any, fmt: batching.SFTFormat, task: Any,
                 rows: int, num_epochs: int | None) -> Any:
    return batching.sft_batch_dataset(
        source, tokenizer, fmt, rows=rows, packing=bool(config.data.packing), task=task,
        seed=config.seed, shuffle=bool(config.data.shuffle), num_epochs=num_epochs,
        shard_index=jax.process_index(), shard_count=jax.process_count(),
        pad_to_max=jax.process_count() > 1, drop_remainder=False,
        num_threads=int(config.data.num_threads))


def count_steps(dataset: Any) -> int:
    """Batches in a finite dataset (one tokenizing pass; for `train.num_steps <= 0`)."""
    return sum(1 for _ in dataset)


# ----------------------------------------------------------------------------- training

def train(config: Any, workdir: str) -> dict[str, Any]:
    """Run (or resume) SFT in `workdir`; returns the final train and eval metrics."""
    check_config(config)
    build.setup_distributed(config)
    mesh = build.build_mesh(config)
    rows = check_batch_layout(config, mesh)
    os.makedirs(workdir, exist_ok=True)
    fmt = sft_format(config)
    source, held_out, data_task, eval_task = load_data(config)
    tokenizer = build.build_tokenizer(config, workdir,
                                      lambda: training_texts(source, data_task, fmt))
    model_config = build.build_model_config(config, tokenizer)

    num_epochs = config.data.num_epochs or None
    num_steps = config.train.num_steps
    if num_steps <= 0 or (num_epochs and jax.process_count() > 1):
        # With finite data every process must stop at the same step: the fewest batches any
        # process's shard makes (packing makes the counts differ slightly).
        counted = count_steps(make_batches(config, source, tokenizer, fmt, data_task, rows,
                                           num_epochs))
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            counted = int(np.min(multihost_utils.process_allgather(np.asarray(counted))))
        num_steps = counted if num_steps <= 0 else min(num_steps, counted)
    optimizer, schedule = make_optimizer(config.optim, num_steps)
    dataset = make_batches(config, source, tokenizer, fmt, data_task, rows, num_epochs)
    iterator = iter(dataset)
    checkpointer, writer = build.run_outputs(config, workdir, num_steps)
    try:
        state = initial_state(config, model_config, optimizer, mesh, checkpointer, iterator,
                               writer)
        loss_fn = functools.partial(losses.get_loss(config.train.loss), config=model_config,
                                    averaging=config.train.averaging,
                                    chunk_size=config.train.logprob_chunk_size)
        step_fn = make_train_step(lambda params, batch: loss_fn(params, batch=batch), optimizer,
                                  schedule, mesh=mesh,
                                  state_shardings=state_shardings(model_config, optimizer, mesh),
                                  num_microbatches=config.train.num_microbatches)
        evaluator = None
        if eval_task is not None and held_out:
            evaluator = TaskEvaluator(model_config, mesh, tokenizer, eval_task, held_out, fmt,
                                      max_new_tokens=config.eval.max_new_tokens,
                                      batch_size=config.eval.batch_size,
                                      grading_workers=config.eval.grading_workers)

        def next_batch(_: Any) -> dict[str, Any] | None:
            return next(iterator, None)

        throughput = Throughput(model_config.flops_per_token(fmt.max_length),
                                jax.device_count(), jax.devices()[0].device_kind)
        result = run_loop(
            state, step_fn=step_fn, next_batch=next_batch, mesh=mesh,
            options=LoopOptions(num_steps=num_steps, save_every=config.checkpoint.every,
                                eval_every=config.eval.every,
                                log_data_order=bool(config.log.data_order)),
            checkpointer=checkpointer, data_iterator=iterator,
            config_json=config_to_json(config), writer=writer, throughput=throughput,
            workdir=workdir,
            evaluate=(lambda s: evaluator(s.params)) if evaluator is not None else None)
        return finish_run(config, result, model_config, tokenizer, workdir, writer, evaluator)
    finally:
        writer.close()
        checkpointer.close()


def finish_run(config: Any, result: Any, model_config: ModelConfig, tokenizer: Any,
               workdir: str, writer: MetricsWriter, evaluator: Any) -> dict[str, Any]:
    """The end of a trainer's run: the summary, then (unless preempted) the HF export and the
    final held-out evaluation."""
    summary: dict[str, Any] = {"status": result.status, "step": result.step,
                               "train": result.last_metrics}
    if result.status == "preempted":
        log.warning("preempted at step %d; checkpoint saved in %s", result.step, workdir)
        return summary
    if config.checkpoint.export_hf:
        export = os.path.join(workdir, EXPORT_DIR)
        export_model(model_config, result.state.params, tokenizer, export,
                     dtype=config.checkpoint.export_dtype)
        writer.event(result.step, "exported", path=export)
        summary["export"] = export
    if evaluator is not None:
        metrics = evaluator(result.state.params)
        writer.write(result.step, metrics, kind="eval")
        summary["eval"] = metrics
    return summary


def initial_state(config: Any, model_config: ModelConfig, optimizer: Any, mesh: Any,
                   checkpointer: Checkpointer, iterator: Any, writer: MetricsWriter) -> Any:
    """Resume from the latest checkpoint in the workdir, or start from step 0."""
    latest = checkpointer.latest_step()
    if latest is not None:
        changed = _config_changes(checkpointer.saved_config(latest), config_to_json(config))
        if changed:
            log.warning("resuming with a config that differs from the checkpoint's in: %s",
                        ", ".join(changed))
        try:
            state, _ = checkpointer.restore(latest, abstract_state(model_config, optimizer, mesh),
                                            iterator)
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(
                f"checkpoint: the train state saved at step {latest} in {checkpointer.directory} "
                f"does not fit this config (changed: {', '.join(changed) or 'nothing visible'}); "
                f"use a new --workdir or the config it was saved with ({e})".splitlines()[0]
            ) from None
        writer.event(latest, "resumed", checkpoint=latest)
        log.info("resumed from step %d", latest)
        return state
    params = build.initial_params(config, model_config, mesh)
    writer.event(0, "started", num_params=model_config.num_params)
    return init_state(model_config, optimizer, mesh, seed=config.seed, params=params)


def config_to_json(config: Any) -> dict[str, Any]:
    import json

    return json.loads(config.to_json())


def _config_changes(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    keys = sorted(set(saved) | set(current))
    out = []
    for key in keys:
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(_config_changes(a, b, f"{prefix}{key}."))
        elif a != b:
            out.append(f"{prefix}{key}")
    return out


def export_model(model_config: ModelConfig, params: Any, tokenizer: Any, directory: str, *,
                 dtype: str | None = None) -> None:
    """The trained model as a Hugging Face directory (config.json, safetensors, tokenizer)."""
    save_pretrained(Model(model_config, params), directory, dtype=dtype)
    if jax.process_index() == 0:
        tokenizer.save_pretrained(directory)
