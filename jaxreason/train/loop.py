"""The step loop every trainer runs: batches in, updates, metrics, checkpoints, stops.

It owns the run's life cycle rules in one place:
- metrics of step s are fetched after step s + 1 is dispatched, so the host never stalls the
  device; a NaN / infinite loss stops the run naming the step, before anything is saved;
- a checkpoint is written every `save_every` steps, at the end, and when a preemption is
  requested (SIGTERM) -- always right after the step, when the data iterator has yielded
  exactly the batches of the steps done, so a resumed run sees the same data order;
- `evaluate(state)` runs every `eval_every` steps (and is the trainer's business at the end).

Algorithms differ only in `next_batch(state)` (SFT reads the data iterator, GRPO samples and
grades) and in the step function they hand in (`train.step.make_train_step`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import Mesh

from jaxreason import parallel
from jaxreason.train.checkpoint import Checkpointer, PreemptionGuard
from jaxreason.train.errors import NonFiniteLossError
from jaxreason.train.metrics import MetricsWriter, Throughput
from jaxreason.train.state import TrainState

log = logging.getLogger(__name__)

# Batch fields that stay on the host (logged, never sent to the devices).
HOST_FIELDS = ("example_ids", "num_truncated", "num_skipped", "host_metrics")


@dataclasses.dataclass(frozen=True)
class LoopOptions:
    """num_steps: stop after this many updates; save_every / eval_every: 0 = never (except
    the final save); log_data_order: write each step's example ids to
    `<workdir>/data_order.p<process>.jsonl`."""

    num_steps: int
    save_every: int = 0
    eval_every: int = 0
    log_data_order: bool = False


@dataclasses.dataclass
class LoopResult:
    state: TrainState
    step: int
    status: str  # "completed" | "data_exhausted" | "preempted"
    last_metrics: dict[str, float]


class _Pending:
    def __init__(self, step: int, metrics: Any, host: dict[str, Any]) -> None:
        self.step, self.metrics, self.host = step, metrics, host


def run_loop(state: TrainState, *, step_fn: Callable[[TrainState, Any], tuple[TrainState, Any]],
             next_batch: Callable[[TrainState], dict[str, np.ndarray] | None], mesh: Mesh,
             options: LoopOptions, checkpointer: Checkpointer, data_iterator: Any,
             config_json: dict[str, Any], writer: MetricsWriter, throughput: Throughput,
             workdir: str, evaluate: Callable[[TrainState], dict[str, float]] | None = None
             ) -> LoopResult:
    """Run steps from `state.step` to `options.num_steps` (see the module docstring)."""
    step = int(jax.device_get(state.step))
    last_saved = checkpointer.latest_step()
    last_metrics: dict[str, float] = {}
    order_file = None
    if options.log_data_order:
        order_file = open(os.path.join(workdir, f"data_order.p{jax.process_index()}.jsonl"), "a",
                          buffering=1)

    def finish(pending: _Pending | None) -> None:
        nonlocal last_metrics
        if pending is None:
            return
        metrics = {k: float(v) for k, v in jax.device_get(pending.metrics).items()}
        if not (math.isfinite(metrics["loss"]) and math.isfinite(metrics.get("grad_norm", 0.0))):
            raise NonFiniteLossError(pending.step, metrics, last_saved)
        metrics.update(throughput.update(metrics.get("tokens", 0.0)))
        metrics.update(pending.host.get("host_metrics") or {})  # e.g. GRPO rewards, timings
        for field, name in (("num_truncated", "truncated_examples"),
                            ("num_skipped", "skipped_examples")):
            if field in pending.host:
                metrics[name] = float(pending.host[field])
        writer.write(pending.step, metrics)
        if order_file is not None and "example_ids" in pending.host:
            order_file.write(json.dumps({"step": pending.step, "example_ids": [
                int(i) for i in pending.host["example_ids"]]}) + "\n")
        last_metrics = metrics

    def save(at: int) -> None:
        nonlocal last_saved
        checkpointer.save(at, state, data_iterator, config_json)
        last_saved = at
        throughput.reset()

    guard = PreemptionGuard(checkpointer.manager)
    pending: _Pending | None = None
    status = "completed"
    throughput.reset()
    try:
        while step < options.num_steps:
            host_batch = next_batch(state)
            if host_batch is None:
                status = "data_exhausted"
                break
            host = {k: host_batch.pop(k) for k in HOST_FIELDS if k in host_batch}
            batch = parallel.host_local_to_global(host_batch, mesh)
            state, metrics = step_fn(state, batch)
            step += 1
            finish(pending)
            pending = _Pending(step, metrics, host)
            boundary_save = options.save_every and step % options.save_every == 0
            boundary_eval = evaluate is not None and options.eval_every and (
                step % options.eval_every == 0) and step < options.num_steps
            preempted = guard.requested(step)
            if boundary_save or boundary_eval or preempted:
                finish(pending)
                pending = None
            if boundary_save or preempted:
                save(step)
            if boundary_eval:
                writer.write(step, evaluate(state), kind="eval")
                throughput.reset()
            if preempted:
                status = "preempted"
                writer.event(step, "preempted", checkpoint=step)
                break
        finish(pending)
        if status != "preempted" and last_saved != step:
            save(step)
    finally:
        guard.close()
        if order_file is not None:
            order_file.close()
    checkpointer.wait()
    return LoopResult(state, step, status, last_metrics)
