"""PPO's objective and the per-token arithmetic around it (pure functions of arrays).

The PPO algorithm (`algorithms/ppo.py`) trains an actor (the language model) and a critic
(`model/value_head.py`) held as one parameter tree `{"policy": ..., "value": ...}`. Before its
updates, the step's pre-step computes without gradient, for every completion token t:

- the per-token reward: `r_t = -kl_coef * kl_t`, plus the task's reward on the last token
  (`token_rewards`), with kl_t an estimate of log pi_old(o_t) - log pi_ref(o_t)
  (`kl_penalty`; only when kl_coef > 0);
- the critic's values V_t and, by `advantages.gae`, advantages and returns; advantages are
  whitened over the batch's completion tokens (`masked_whiten`, as veRL does).

The loss (registered as "ppo" in `jaxreason.losses`) is, per token with ratio =
exp(log pi - log pi_old):

    policy  = max(-A ratio, -A clip(ratio, 1 - eps_low, 1 + eps_high))
    value   = 0.5 max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2)
    loss_t  = actor_update * (policy - entropy_coef * entropy) + value_coef * value

summed over the completion tokens of the batch and divided by their number (token-level
mean, so micro-batches and shards add up to the global mean). `actor_update` (a per-row
0 / 1 field) switches the actor's term off during the critic's warm-up steps.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxreason.losses import DEFAULT_CHUNK_SIZE, Batch, LossOutput, token_logprobs
from jaxreason.model import value_head
from jaxreason.model.config import ModelConfig

KL_ESTIMATORS = ("kl", "abs", "mse", "low_var_kl")


def kl_penalty(logp: jax.Array, ref_logp: jax.Array, estimator: str = "kl") -> jax.Array:
    """Per-token estimate of KL(pi || pi_ref) from the sampled tokens' log-probs:
    "kl": log pi - log pi_ref; "abs": its absolute value; "mse": half its square;
    "low_var_kl" (k3): exp(d) - d - 1 with d = log pi_ref - log pi, clipped to [-10, 10]."""
    delta = logp - ref_logp
    if estimator == "kl":
        return delta
    if estimator == "abs":
        return jnp.abs(delta)
    if estimator == "mse":
        return 0.5 * delta * delta
    if estimator == "low_var_kl":
        d = -delta
        return jnp.clip(jnp.exp(d) - d - 1.0, -10.0, 10.0)
    raise ValueError(f"kl estimator must be one of {KL_ESTIMATORS}, got {estimator!r}")


KL_CONTROLLERS = ("fixed", "adaptive")


def adaptive_kl_coef(coef: jax.Array, kl: jax.Array, *, target: float, horizon: float,
                     completions: int) -> jax.Array:
    """The next KL coefficient of the adaptive controller of Ziegler et al. 2019 (TRL's and
    veRL's `AdaptiveKLController`): the error `kl / target - 1`, clipped to [-0.2, 0.2], moves
    the coefficient by the factor `1 + error * completions / horizon`. kl: the step's KL per
    completion (summed over its tokens, averaged over completions)."""
    error = jnp.clip(kl / target - 1.0, -0.2, 0.2)
    return coef * (1.0 + error * completions / horizon)


def last_token_mask(mask: jax.Array) -> jax.Array:
    """1.0 at the last position of each row where `mask` is set, else 0 `[batch, length]`."""
    on = mask > 0
    length = mask.shape[1]
    last = length - 1 - jnp.argmax(on[:, ::-1], axis=1)
    positions = jnp.arange(length)[None, :]
    return ((positions == last[:, None]) & jnp.any(on, axis=1, keepdims=True)).astype(
        jnp.float32)


def token_rewards(scores: jax.Array, kl: jax.Array, mask: jax.Array, kl_coef: float | jax.Array
                  ) -> jax.Array:
    """Per-token rewards `[batch, length]`: -kl_coef * kl on every completion token and the
    sequence's score `[batch]` added on its last one (0 off the mask)."""
    mask = mask.astype(jnp.float32)
    return (-kl_coef * kl + scores[:, None].astype(jnp.float32) * last_token_mask(mask)) * mask


def masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    return jnp.sum(x * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def masked_whiten(x: jax.Array, mask: jax.Array, eps: float = 1e-8) -> jax.Array:
    """(x - mean) / sqrt(var + eps) over the masked entries (unbiased variance, as veRL's
    `masked_whiten`); 0 off the mask."""
    mean = masked_mean(x, mask)
    count = jnp.sum(mask)
    var = jnp.sum((x - mean) ** 2 * mask) / jnp.maximum(count - 1.0, 1.0)
    return (x - mean) / jnp.sqrt(var + eps) * mask


def explained_variance(returns: jax.Array, values: jax.Array, mask: jax.Array) -> jax.Array:
    """1 - Var(R - V) / Var(R) over the masked entries (1: the critic predicts the returns)."""
    def var(x: jax.Array) -> jax.Array:
        return masked_mean((x - masked_mean(x, mask)) ** 2, mask)
    return 1.0 - var(returns - values) / jnp.maximum(var(returns), 1e-8)


def clipped_policy_loss(logp: jax.Array, old_logp: jax.Array, advantages: jax.Array, *,
                        epsilon_low: float = 0.2, epsilon_high: float = 0.2
                        ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(per-token loss max(-A ratio, -A clip(ratio)), whether the clipped term was taken,
    ratio)."""
    ratio = jnp.exp(logp - old_logp)
    unclipped = -advantages * ratio
    clipped = -advantages * jnp.clip(ratio, 1.0 - epsilon_low, 1.0 + epsilon_high)
    return jnp.maximum(unclipped, clipped), clipped > unclipped, ratio


def clipped_value_loss(values: jax.Array, old_values: jax.Array, returns: jax.Array, *,
                       clip: float = 0.5) -> tuple[jax.Array, jax.Array]:
    """(per-token loss 0.5 max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2), whether
    the clipped term was taken)."""
    unclipped = (values - returns) ** 2
    clipped_values = old_values + jnp.clip(values - old_values, -clip, clip)
    clipped = (clipped_values - returns) ** 2
    return 0.5 * jnp.maximum(unclipped, clipped), clipped > unclipped


def ppo_loss(params: Any, config: ModelConfig, batch: Batch, *, epsilon_low: float = 0.2,
             epsilon_high: float = 0.2, value_clip: float = 0.5, value_coef: float = 1.0,
             entropy_coef: float = 0.0, chunk_size: int = DEFAULT_CHUNK_SIZE) -> LossOutput:
    """The PPO objective of actor + critic (see the module docstring).

    params: {"policy": language model, "value": value model}. batch: input_ids, targets,
    positions, segment_ids, loss_mask `[batch, length]` (one completion per row, loss on its
    tokens); advantages, returns, old_values `[batch, length]` (the pre-step's);
    old_logprobs (absent: this is the first update, the loss's own log-probs serve);
    actor_update `[batch]` (0: critic only); optional sampler_logprobs.
    """
    logp, entropy = token_logprobs(params["policy"], config, batch["input_ids"],
                                   batch["targets"], positions=batch["positions"],
                                   attention_mask=batch["segment_ids"] > 0,
                                   segment_ids=batch["segment_ids"], chunk_size=chunk_size,
                                   return_entropy=True)
    values = value_head.batch_values(params["value"], config, batch)
    mask = batch["loss_mask"].astype(jnp.float32)
    sg = jax.lax.stop_gradient
    old = batch["old_logprobs"] if "old_logprobs" in batch else sg(logp)
    policy, policy_clipped, ratio = clipped_policy_loss(
        logp, old, batch["advantages"], epsilon_low=epsilon_low, epsilon_high=epsilon_high)
    value, value_clipped = clipped_value_loss(values, batch["old_values"], batch["returns"],
                                              clip=value_clip)
    actor = batch["actor_update"].astype(jnp.float32)[:, None]
    per_token = actor * (policy - entropy_coef * entropy) + value_coef * value
    tokens = jnp.sum(mask)

    def token_sum(x: jax.Array) -> tuple[jax.Array, jax.Array]:
        return sg(jnp.sum(x.astype(jnp.float32) * mask)), tokens

    metrics = {
        "policy_loss": token_sum(policy), "value_loss": token_sum(value),
        "clip_fraction": token_sum(policy_clipped), "value_clip_fraction": token_sum(value_clipped),
        "entropy": token_sum(entropy), "ratio": token_sum(ratio),
        "approx_kl_old": token_sum(0.5 * (logp - old) ** 2), "values": token_sum(values),
    }
    if "sampler_logprobs" in batch:
        metrics["logprob_gap_sampler"] = token_sum(jnp.abs(sg(old) - batch["sampler_logprobs"]))
    return LossOutput(jnp.sum(per_token * mask), tokens, metrics)
