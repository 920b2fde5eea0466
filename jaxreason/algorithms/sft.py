"""Supervised fine-tuning: next-token NLL on prompt/completion records.

Records (a file, or a generator for CPU recipes; task records become prompt/completion
through the task) are tokenized, padded or packed by the Grain iterator of
`jaxreason.data.loader`, and trained with a loss of the `jaxreason.losses` registry
(`train.loss`, "sft" by default: completion tokens only, or all tokens with
`data.loss_on = "all"` as ASTRO does). Everything else is the shared lifecycle.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import numpy as np

from jaxreason import losses
from jaxreason.algorithms.base import (Algorithm, Data, RunContext, check_batch_shape,
                                       check_train_source, example_format, get_task, one_of)
from jaxreason.data import tokenize
from jaxreason.train import build
from jaxreason.train.errors import ConfigError
from jaxreason.train.step import ParamsLoss


class SFT(Algorithm):
    name = "sft"

    def check_config(self, config: Any) -> None:
        one_of("train.loss", config.train.loss, losses.loss_names())
        one_of("train.averaging", config.train.averaging, losses.AVERAGING)
        one_of("data.loss_on", config.data.loss_on, tokenize.LOSS_ON)
        check_batch_shape(config)
        check_train_source(config)
        self.config, self.fmt = config, example_format(config)

    def load_data(self, config: Any) -> Data:
        self.data_task = get_task(config, "data.task")
        eval_task = get_task(config, "eval.task") or self.data_task
        generated: list[dict[str, Any]] = []
        if config.data.generator:
            self.source, generated = build.generated_records(config)
        else:
            self.source = config.data.train
            self._check_first_record()
        return Data(build.held_out_records(config, eval_task, generated), eval_task)

    def _check_first_record(self) -> None:
        """Fail before any heavy work if the data lacks a needed field (the error names the
        file, line and field; later records are checked as they are read)."""
        from jaxreason.data import readers

        task, path = self.data_task, self.source
        required = task.required_fields if task is not None else (self.fmt.prompt_field,
                                                                   self.fmt.completion_field)
        first = readers.make_map_dataset(path, shuffle=False, num_epochs=1,
                                         required_fields=required)[0]
        if task is not None:
            try:
                tokenize.task_sft_record(first, task, self.fmt.chat)
            except tokenize.RecordError as e:
                raise tokenize.RecordError(f"{path}: first record: {e}") from None

    def tokenizer_texts(self, limit: int = 20000) -> list[str]:
        """Prompt + completion texts of the first `limit` records."""
        from jaxreason.data import readers

        source, fmt = self.source, self.fmt
        records = source if isinstance(source, list) else readers.read_records(source)
        texts = []
        for record in records[:limit]:
            if self.data_task is not None:
                record = tokenize.task_sft_record(record, self.data_task, fmt.chat)
                prompt, completion = record["prompt"], record["completion"]
            else:
                prompt, completion = record.get(fmt.prompt_field), record.get(
                    fmt.completion_field)
            if isinstance(prompt, list):
                prompt = "\n".join(str(m.get("content", "")) for m in prompt)
            texts.append(f"{prompt}{completion}")
        return texts

    def _batches(self, ctx: RunContext, rows: int, num_epochs: int | None) -> Any:
        from jaxreason.data.loader import sft_batch_dataset

        c = ctx.config
        return sft_batch_dataset(
            self.source, ctx.tokenizer, self.fmt, rows=rows, packing=bool(c.data.packing),
            task=self.data_task, seed=c.seed, shuffle=bool(c.data.shuffle),
            num_epochs=num_epochs, shard_index=jax.process_index(),
            shard_count=jax.process_count(), pad_to_max=jax.process_count() > 1,
            drop_remainder=False, num_threads=int(c.data.num_threads))

    def prepare(self, ctx: RunContext) -> Any:
        rows = check_batch_layout(ctx.config, ctx.mesh)
        num_epochs = ctx.config.data.num_epochs or None
        steps = ctx.config.train.num_steps
        if steps <= 0 or (num_epochs and jax.process_count() > 1):
            # With finite data every process must stop at the same step: the fewest batches
            # any process's shard makes (packing makes the counts differ slightly).
            counted = sum(1 for _ in self._batches(ctx, rows, num_epochs))
            if jax.process_count() > 1:
                from jax.experimental import multihost_utils

                counted = int(np.min(multihost_utils.process_allgather(np.asarray(counted))))
            steps = counted if steps <= 0 else min(steps, counted)
        self._num_steps = steps
        self.iterator = iter(self._batches(ctx, rows, num_epochs))
        return self.iterator

    @property
    def num_steps(self) -> int:
        return self._num_steps

    @property
    def row_length(self) -> int:
        return self.fmt.max_length

    def loss(self, ctx: RunContext) -> ParamsLoss:
        c = ctx.config
        loss_fn = functools.partial(losses.get_loss(c.train.loss), config=ctx.model_config,
                                    averaging=c.train.averaging,
                                    chunk_size=c.train.logprob_chunk_size)
        return lambda params, batch: loss_fn(params, batch=batch)

    def next_batch(self, state: Any) -> dict[str, Any] | None:
        return next(self.iterator, None)


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
