"""Advantage estimators and group filters for group-sampled RL (GRPO and its variants), and
GAE for PPO.

The group estimators are pure NumPy over rewards `[groups, group_size]` (one group = the
completions of one prompt), so they run on the host between sampling and the train step. A
config picks one by name (`grpo.advantage`: "grpo", "dr_grpo", "rloo"), the way it picks a
loss. `gae` works on per-token `[batch, length]` arrays with `jax.numpy` (NumPy inputs are
fine): PPO runs it inside the jitted pre-step, right after the critic's values.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxreason.registry import Registry

# rewards [groups, group_size] -> advantages [groups, group_size] float32
AdvantageFn = Callable[[np.ndarray], np.ndarray]
ADVANTAGES: Registry[AdvantageFn] = Registry("advantage estimator")


def register_advantage(name: str) -> Callable[[AdvantageFn], AdvantageFn]:
    """Decorator: make an estimator available to configs as `grpo.advantage = name`."""
    return ADVANTAGES.register(name)


def get_advantage(name: str) -> AdvantageFn:
    return ADVANTAGES.get(name)


def advantage_names() -> list[str]:
    return ADVANTAGES.names()


def _check(rewards: np.ndarray) -> np.ndarray:
    rewards = np.asarray(rewards, np.float64)
    if rewards.ndim != 2:
        raise ValueError(f"rewards must be [groups, group_size], got shape {rewards.shape}")
    return rewards


@register_advantage("grpo")
def group_advantages(rewards: np.ndarray, *, normalize_std: bool = True,
                     epsilon: float = 1e-4) -> np.ndarray:
    """(r - mean(group)) / (std(group) + epsilon), or without the std division (Dr. GRPO).

    The std is the population std (ddof=0); a group whose rewards are all equal gets zero
    advantages either way. Returns float32 `[groups, group_size]`.
    """
    rewards = _check(rewards)
    centered = rewards - rewards.mean(axis=1, keepdims=True)
    if normalize_std:
        centered = centered / (rewards.std(axis=1, keepdims=True) + epsilon)
    return centered.astype(np.float32)


@register_advantage("rloo")
def leave_one_out_advantages(rewards: np.ndarray) -> np.ndarray:
    """r_i - mean of the other completions' rewards (RLOO baseline)."""
    rewards = _check(rewards)
    n = rewards.shape[1]
    if n < 2:
        raise ValueError("leave-one-out needs at least 2 completions per group")
    others = (rewards.sum(axis=1, keepdims=True) - rewards) / (n - 1)
    return (rewards - others).astype(np.float32)


@register_advantage("dr_grpo")
def centered_advantages(rewards: np.ndarray) -> np.ndarray:
    """r - mean(group), without the std division (Dr. GRPO: the std favours groups that are
    almost all right or all wrong)."""
    return group_advantages(rewards, normalize_std=False)


def informative_groups(rewards: np.ndarray, *, min_std: float = 0.0) -> np.ndarray:
    """Boolean `[groups]`: groups kept by dynamic sampling.

    min_std = 0 keeps groups whose rewards are not all equal (DAPO); min_std > 0 keeps groups
    whose reward std exceeds it (SRL's filter). Dropped groups carry no GRPO gradient.
    """
    rewards = _check(rewards)
    if min_std > 0:
        return rewards.std(axis=1) > min_std
    return np.ptp(rewards, axis=1) > 0


def gae(rewards: Any, values: Any, mask: Any, gamma: float = 1.0, lam: float = 1.0
        ) -> tuple[jax.Array, jax.Array]:
    """Generalized advantage estimation over per-token arrays `[batch, length]`.

    mask: 1 on the completion tokens (the steps of the episode), 0 on prompt and padding
    positions, which are skipped (the recursion links each masked position to the next masked
    one) and get advantage and return 0. With delta_t = r_t + gamma V_next - V_t, where
    V_next is the value of the next masked position and 0 after the last one,
    A_t = delta_t + gamma lam A_next and the return R_t = A_t + V_t (with gamma = lam = 1:
    the reward-to-go). Returns (advantages, returns), float32.
    """
    rewards, values, mask = (jnp.asarray(x, jnp.float32) for x in (rewards, values, mask))
    if not rewards.shape == values.shape == mask.shape or rewards.ndim != 2:
        raise ValueError(f"rewards, values and mask must be [batch, length] arrays of one shape, "
                         f"got {rewards.shape}, {values.shape}, {mask.shape}")

    def back(carry: tuple[jax.Array, jax.Array], xs: tuple[jax.Array, ...]
             ) -> tuple[tuple[jax.Array, jax.Array], jax.Array]:
        next_value, next_advantage = carry
        reward, value, on = xs
        advantage = reward + gamma * next_value - value + gamma * lam * next_advantage
        carry = (jnp.where(on > 0, value, next_value), jnp.where(on > 0, advantage,
                                                                next_advantage))
        return carry, advantage * on

    zeros = jnp.zeros(rewards.shape[:1], jnp.float32)
    _, advantages = jax.lax.scan(back, (zeros, zeros), (rewards.T, values.T, mask.T),
                                 reverse=True)
    advantages = advantages.T
    return advantages, (advantages + values) * mask
