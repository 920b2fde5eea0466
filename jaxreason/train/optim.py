"""AdamW with warmup + decay schedules and global-norm clipping, built from `config.optim`.

Weight decay skips norms and biases (decaying a gain towards zero is never what one wants).
Clipping comes first in the chain so the moments see clipped gradients, as in PyTorch's
`clip_grad_norm_` followed by `AdamW.step`.
"""

from __future__ import annotations

from typing import Any

import jax
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


def make_optimizer(optim: Any, total_steps: int, *, learning_rate: float | None = None,
                   delay_steps: int = 0) -> tuple[optax.GradientTransformation,
                                                  optax.Schedule]:
    """(optimizer, schedule) from an `optim` config section (see configs/base.py).

    learning_rate: the peak (default `optim.learning_rate`; PPO's critic has its own);
    delay_steps: updates at rate 0 before the schedule starts, which then spans the remaining
    `total_steps - delay_steps` (PPO's critic warm-up holds the actor)."""
    peak = float(optim.learning_rate if learning_rate is None else learning_rate)
    delay_steps = max(0, min(int(delay_steps), int(total_steps)))
    schedule = learning_rate_schedule(peak, max(1, total_steps - delay_steps),
                                      schedule=optim.schedule, warmup_steps=optim.warmup_steps,
                                      final_ratio=float(optim.final_lr_ratio))
    if delay_steps:
        schedule = optax.join_schedules([optax.constant_schedule(0.0), schedule], [delay_steps])
    parts = []
    if optim.grad_clip and optim.grad_clip > 0:
        parts.append(optax.clip_by_global_norm(float(optim.grad_clip)))
    parts.append(optax.adamw(schedule, b1=float(optim.b1), b2=float(optim.b2),
                             eps=float(optim.eps), weight_decay=float(optim.weight_decay),
                             mask=decay_mask))
    return optax.chain(*parts), schedule
