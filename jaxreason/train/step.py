"""The jitted train step `(state, batch) -> (state, metrics)`, shared by every algorithm.

The whole update is visible here: micro-batch gradient accumulation under `lax.scan`, the
division by the global normaliser, the global gradient norm, the optimizer update. The state is
donated and its shardings are explicit on both sides, so parameters and moments are updated
in place in their sharded layout; the batch is sharded over the ("data", "fsdp") mesh axes.

Micro-batch j is rows j, j+n, j+2n, ... of the batch: every device's shard of rows then holds
an equal part of each micro-batch, so splitting moves no data between devices.

Algorithms that make several updates from one batch (GRPO / PPO: `num_iterations` passes of
`num_minibatches` updates) and need log-probs of frozen parameters (the sampling-time policy,
a reference model) use the same wrapper: an optional `pre_step(params, frozen, batch)` adds
fields to the batch, without gradient, before the first update (a field "metrics", a dict of
scalars, is logged with the step's metrics instead: PPO's returns and explained variance);
`state.step` then counts algorithm steps while the optimizer counts updates. An algorithm with
state of its own (`state.extra`, e.g. PPO's adaptive KL coefficient) finds it in the pre-step's
batch under "state" and returns the next value as the field "state".
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxreason import parallel
from jaxreason.losses import LossOutput
from jaxreason.train.state import TrainState
from jaxreason.train.trainable import trainable, with_trainable

# (params, batch) -> LossOutput; an objective from `jaxreason.losses` with its config bound.
ParamsLoss = Callable[[Any, dict[str, jax.Array]], LossOutput]


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Rows over ("data", "fsdp"); every other dimension replicated (any rank)."""
    return NamedSharding(mesh, parallel.logical_to_spec(("batch",), None, mesh))


def split_microbatches(batch: dict[str, jax.Array], n: int) -> dict[str, jax.Array]:
    """`[rows, ...] -> [n, rows / n, ...]`, micro-batch j = rows j, j + n, j + 2n, ..."""
    def split(x: jax.Array) -> jax.Array:
        rows = x.shape[0]
        if rows % n:
            raise ValueError(f"batch of {rows} rows does not split into {n} micro-batches")
        x = x.reshape(rows // n, n, *x.shape[1:]).swapaxes(0, 1)
        return parallel.constrain(x, (None, "batch") + (None,) * (x.ndim - 2))
    return jax.tree.map(split, batch)


def map_microbatches(fn: Callable[[dict[str, jax.Array]], Any], batch: dict[str, jax.Array],
                     num_microbatches: int) -> Any:
    """`fn` (rows in, rows out) applied to one micro-batch at a time under `lax.map`, its
    outputs put back in row order: the same values as `fn(batch)` with the activations of one
    micro-batch alive at once (a pre-step's forward over a whole RL step's rows otherwise
    needs all rows' activations and logit chunks together)."""
    if num_microbatches == 1:
        return fn(batch)
    out = jax.lax.map(fn, split_microbatches(batch, num_microbatches))

    def merge(x: jax.Array) -> jax.Array:  # [n, rows / n, ...] -> [rows, ...], inverse of split
        x = x.swapaxes(0, 1)
        x = x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])
        return parallel.constrain(x, ("batch",) + (None,) * (x.ndim - 1))
    return jax.tree.map(merge, out)


def accumulate_gradients(loss_fn: ParamsLoss, params: Any, batch: dict[str, jax.Array],
                         num_microbatches: int, grad_shardings: Any = None
                         ) -> tuple[LossOutput, Any]:
    """Sums of (loss, weight, metrics) and of the gradient of `total` over micro-batches.
    `grad_shardings` (the parameters' shardings) places the gradient accumulators."""
    def grad_fn(mb: dict[str, jax.Array]) -> tuple[LossOutput, Any]:
        def total(p: Any) -> tuple[jax.Array, LossOutput]:
            out = loss_fn(p, mb)
            return out.total, out
        (_, out), grads = jax.value_and_grad(total, has_aux=True)(params)
        return out, grads

    if num_microbatches == 1:
        return grad_fn(batch)
    micro = split_microbatches(batch, num_microbatches)
    first = jax.tree.map(lambda x: x[0], micro)
    out_shape = jax.eval_shape(lambda: grad_fn(first))
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), out_shape)
    if grad_shardings is not None:  # accumulators live where the parameters live
        zeros = (zeros[0], jax.lax.with_sharding_constraint(zeros[1], grad_shardings))

    def body(acc: Any, mb: dict[str, jax.Array]) -> tuple[Any, None]:
        return jax.tree.map(jnp.add, acc, grad_fn(mb)), None

    acc, _ = jax.lax.scan(body, zeros, micro)
    return acc


def _safe_div(a: jax.Array, b: jax.Array) -> jax.Array:
    return a / jnp.where(b > 0, b, 1)


def train_step(state: TrainState, batch: dict[str, jax.Array], *, loss_fn: ParamsLoss,
               optimizer: optax.GradientTransformation, schedule: optax.Schedule,
               num_microbatches: int = 1, grad_shardings: Any = None
               ) -> tuple[TrainState, dict[str, jax.Array]]:
    """One optimizer update on the global batch (un-jitted; see `make_train_step`). Only the
    trainable parameters (`train/trainable.py`: all, or a LoRA model's adapters) get
    gradients and updates; frozen ones enter the loss as they are."""
    def trainable_loss(train: Any, mb: dict[str, jax.Array]) -> LossOutput:
        return loss_fn(with_trainable(state.params, train), mb)

    train = trainable(state.params)
    out, grads = accumulate_gradients(trainable_loss, train, batch, num_microbatches,
                                      None if grad_shardings is None
                                      else trainable(grad_shardings))
    grads = jax.tree.map(lambda g: _safe_div(g, out.weight), grads)
    grad_norm = optax.global_norm(grads)
    updates, opt_state = optimizer.update(grads, state.opt_state, train)
    params = with_trainable(state.params, optax.apply_updates(train, updates))
    metrics = {
        "loss": _safe_div(out.total, out.weight),
        "grad_norm": grad_norm,
        "learning_rate": jnp.asarray(schedule(state.step), jnp.float32),
        "loss_weight": out.weight,
    }
    if "segment_ids" in batch:
        metrics["tokens"] = jnp.sum(batch["segment_ids"] > 0).astype(jnp.float32)
    if "loss_mask" in batch:
        metrics["loss_tokens"] = jnp.sum(batch["loss_mask"]).astype(jnp.float32)
    metrics.update({k: _safe_div(s, c) for k, (s, c) in out.metrics.items()})
    return dataclasses.replace(state, step=state.step + 1, params=params,
                               opt_state=opt_state), metrics



# (params at the start of the step, frozen params or None, batch) -> fields added to the batch
PreStep = Callable[[Any, Any, dict[str, jax.Array]], dict[str, jax.Array]]


def algorithm_step(state: TrainState, batch: dict[str, jax.Array], frozen: Any = None, *,
                   loss_fn: ParamsLoss, optimizer: optax.GradientTransformation,
                   schedule: optax.Schedule, num_microbatches: int = 1,
                   pre_step: PreStep | None = None, num_iterations: int = 1,
                   num_minibatches: int = 1, grad_shardings: Any = None
                   ) -> tuple[TrainState, dict[str, jax.Array]]:
    """One algorithm step (un-jitted): `pre_step`'s fields (stop-gradient), then
    `num_iterations` x `num_minibatches` optimizer updates; minibatch j is rows j, j + m, ...
    Metrics are means over the updates (token counts: sums over one pass); the logged
    learning rate is the one of the step's first update. With one update and no pre-step this
    is exactly `train_step`."""
    pre_metrics: dict[str, jax.Array] = {}
    extra = state.extra
    if pre_step is not None:
        inputs = batch if extra is None else {**batch, "state": extra}
        fields = dict(jax.lax.stop_gradient(pre_step(state.params, frozen, inputs)))
        pre_metrics = fields.pop("metrics", {})
        extra = fields.pop("state", extra)
        batch = {**batch, **fields}
    updates = num_iterations * num_minibatches
    if updates == 1:
        state, metrics = train_step(state, batch, loss_fn=loss_fn, optimizer=optimizer,
                                    schedule=schedule, num_microbatches=num_microbatches,
                                    grad_shardings=grad_shardings)
        return dataclasses.replace(state, extra=extra), {**metrics, **pre_metrics}
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
    return dataclasses.replace(state, step=start + 1, extra=extra), {**metrics, **pre_metrics}


def make_train_step(loss_fn: ParamsLoss, optimizer: optax.GradientTransformation,
                    schedule: optax.Schedule, *, mesh: Mesh, state_shardings: TrainState,
                    num_microbatches: int = 1,
                    rules: parallel.LogicalRules | None = None,
                    pre_step: PreStep | None = None, frozen: Any = None,
                    num_iterations: int = 1, num_minibatches: int = 1
                    ) -> Callable[[TrainState, dict[str, jax.Array]],
                                  tuple[TrainState, dict[str, jax.Array]]]:
    """The jitted step with explicit shardings and the state donated. Call it with the batch
    as global arrays (`parallel.host_local_to_global`); tracing happens under the mesh and the
    logical rules so the model's activation constraints apply.

    `frozen` (e.g. a reference model's parameters, laid out like the state's, or another tree
    already placed on the mesh: PPO's reference policy beside actor + critic) is passed to
    the jitted function as an argument on every call, never baked in as a constant;
    `pre_step` and the update counts are as in `algorithm_step`."""
    def step(state: TrainState, batch: dict[str, jax.Array], frozen: Any
             ) -> tuple[TrainState, Any]:
        return algorithm_step(state, batch, frozen, loss_fn=loss_fn, optimizer=optimizer,
                              schedule=schedule, num_microbatches=num_microbatches,
                              pre_step=pre_step, num_iterations=num_iterations,
                              num_minibatches=num_minibatches,
                              grad_shardings=state_shardings.params)

    replicated = NamedSharding(mesh, PartitionSpec())
    frozen_shardings = None
    if frozen is not None:  # laid out like the state's parameters, or placed by its loader
        same_tree = jax.tree.structure(frozen) == jax.tree.structure(state_shardings.params)
        frozen_shardings = (state_shardings.params if same_tree
                            else jax.tree.map(lambda x: x.sharding, frozen))
    jitted = jax.jit(step, in_shardings=(state_shardings, batch_sharding(mesh), frozen_shardings),
                     out_shardings=(state_shardings, replicated), donate_argnums=0)
    rules = tuple(rules) if rules is not None else parallel.DEFAULT_RULES

    def run(state: TrainState, batch: dict[str, jax.Array]) -> tuple[TrainState, Any]:
        with jax.set_mesh(mesh), parallel.logical_rules(rules):
            return jitted(state, batch, frozen)

    run.jitted = jitted  # type: ignore[attr-defined]  (for lowering / cost analysis)
    return run
