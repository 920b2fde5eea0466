"""AdamW with warmup + decay schedules and global-norm clipping, built from `config.optim`.

Weight decay skips norms and biases (decaying a gain towards zero is never what one wants).
Clipping comes first in the chain so the moments see clipped gradients, as in PyTorch's
`clip_grad_norm_` followed by `AdamW.step`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

SCHEDULES = ("cosine", "linear", "constant")


def learning_rate_schedule(peak: float, total_steps: int, *, schedule: str = "cosine",
                           warmup_steps: int = 0, final_ratio: float = 0.0) -> optax.Schedule:
    """Linear warmup from 0 to `peak` over `warmup_steps`, then `schedule` down to
    `peak * final_ratio` at `total_steps` ("constant" stays at `peak`)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"optim.schedule: {schedule!r} is not one of {SCHEDULES}")
    warmup_steps = max(0, min(int(warmup_steps), int(total_steps)))
    decay_steps = max(1, int(total_steps) - warmup_steps)
    end = peak * final_ratio
    if schedule == "cosine":
        decay = optax.cosine_decay_schedule(peak, decay_steps, alpha=final_ratio)
    elif schedule == "linear":
        decay = optax.linear_schedule(peak, end, decay_steps)
    else:
        decay = optax.constant_schedule(peak)
    if warmup_steps == 0:
        return decay
    warmup = optax.linear_schedule(0.0, peak, warmup_steps)
    return optax.join_schedules([warmup, decay], [warmup_steps])


def decay_mask(params: Any) -> Any:
    """True for the matrices weight decay applies to (not norms, not biases)."""
    def is_decayed(path: tuple[Any, ...], _: Any) -> bool:
        name = jax.tree_util.keystr(path)
        return "norm" not in name and "bias" not in name
    return jax.tree_util.tree_map_with_path(is_decayed, params)


def optim_schedule(optim: Any, total_steps: int, *, learning_rate: float | None = None,
                   delay_steps: int = 0) -> optax.Schedule:
    """The schedule of an `optim` section. learning_rate: the peak (default
    `optim.learning_rate`); delay_steps: updates at rate 0 before the schedule starts, which
    then spans the remaining `total_steps - delay_steps` (PPO's critic warm-up holds the
    actor)."""
    peak = float(optim.learning_rate if learning_rate is None else learning_rate)
    delay_steps = max(0, min(int(delay_steps), int(total_steps)))
    schedule = learning_rate_schedule(peak, max(1, total_steps - delay_steps),
                                      schedule=optim.schedule, warmup_steps=optim.warmup_steps,
                                      final_ratio=float(optim.final_lr_ratio))
    if delay_steps:
        schedule = optax.join_schedules([optax.constant_schedule(0.0), schedule], [delay_steps])
    return schedule


def make_optimizer(optim: Any, total_steps: int) -> tuple[optax.GradientTransformation,
                                                          optax.Schedule]:
    """(optimizer, schedule) from an `optim` config section (see configs/base.py)."""
    schedule = optim_schedule(optim, total_steps)
    parts = []
    if optim.grad_clip and optim.grad_clip > 0:
        parts.append(optax.clip_by_global_norm(float(optim.grad_clip)))
    parts.append(optax.adamw(schedule, b1=float(optim.b1), b2=float(optim.b2),
                             eps=float(optim.eps), weight_decay=float(optim.weight_decay),
                             mask=decay_mask))
    return optax.chain(*parts), schedule


# ----------------------------------------------------------------------------- parts

def clip_parts_by_global_norm(max_norm: float) -> optax.GradientTransformation:
    """Clip each top-level part of the gradient tree by its own global norm (an actor and a
    critic, as if each had its own optimizer)."""
    clip = optax.clip_by_global_norm(max_norm)

    def update(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        return {k: clip.update(v, optax.EmptyState())[0] for k, v in updates.items()}, state
    return optax.GradientTransformation(lambda _: optax.EmptyState(), update)


def scale_parts_by_schedules(schedules: dict[str, optax.Schedule]
                             ) -> optax.GradientTransformation:
    """Multiply each top-level part `k` of the updates by `-schedules[k](count)`: one update
    counter, a learning rate per part. Its state is only the counter, so it composes with
    `optax.tree_map_params` (the train state's shardings) where `multi_transform` does not."""
    def init(params: Any) -> optax.ScaleByScheduleState:
        return optax.ScaleByScheduleState(count=jnp.zeros([], jnp.int32))

    def update(updates: Any, state: optax.ScaleByScheduleState, params: Any = None
               ) -> tuple[Any, Any]:
        out = {}
        for k, v in updates.items():
            rate = schedules[k](state.count)
            out[k] = jax.tree.map(lambda u, rate=rate: (-rate * u).astype(u.dtype), v)
        return out, optax.ScaleByScheduleState(count=state.count + 1)
    return optax.GradientTransformation(init, update)


def make_part_optimizer(optim: Any, total_steps: int,
                        rates: dict[str, tuple[float, int]]
                        ) -> tuple[optax.GradientTransformation, dict[str, optax.Schedule]]:
    """AdamW of an `optim` section over a tree of parts (`{"policy": ..., "value": ...}`),
    each part with its own (peak learning rate, delay) in `rates` and its own gradient
    clipping; Adam's moments and weight decay are `make_optimizer`'s. Returns the optimizer
    and the schedule of each part."""
    schedules = {k: optim_schedule(optim, total_steps, learning_rate=peak, delay_steps=delay)
                 for k, (peak, delay) in rates.items()}
    parts = []
    if optim.grad_clip and optim.grad_clip > 0:
        parts.append(clip_parts_by_global_norm(float(optim.grad_clip)))
    parts += [optax.scale_by_adam(b1=float(optim.b1), b2=float(optim.b2), eps=float(optim.eps)),
              optax.add_decayed_weights(float(optim.weight_decay), mask=decay_mask),
              scale_parts_by_schedules(schedules)]
    return optax.chain(*parts), schedules
