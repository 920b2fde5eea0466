"""PPO with a critic (Schulman et al. 2017; the Cognitive-behaviors / TinyZero recipe).

The state's parameters are one tree `{"policy": language model, "value": value model}`
(`model/value_head.py`; the critic starts as a copy of the policy's transformer under a fresh
head, or from `ppo.critic_path`), trained by one optimizer with separate learning rates
(`optim.learning_rate` for the actor, `ppo.critic_learning_rate` for the critic; each part
clipped by its own global norm). One step:

1. rollouts exactly as GRPO's (`RolloutCollector`, settings from the `grpo` section):
   prompts -> `group_size` samples each -> task grades -> rows, plus each completion's reward;
2. the jitted pre-step, without gradient: old log-probs of the actor (when more than one
   update follows or the KL penalty needs them; a policy forward, or with
   `ppo.old_logprobs = "sampler"` the sampler's own), reference log-probs (only with
   kl_coef > 0), the critic's values; per-token rewards (task reward on the last token minus
   kl_coef x KL estimate on every token), GAE advantages and returns
   (`advantages.gae`, gamma / lam), advantages whitened over the batch;
3. `ppo_epochs` x `num_minibatches` updates of the "ppo" loss (`losses_ppo.py`): clipped
   surrogate, clipped value loss, entropy bonus. During the first `critic_warmup_steps`
   steps the actor's learning rate is 0 and its loss term is off, so only the critic learns.

The export is the actor (a HF causal LM in `<workdir>/export`) and the critic (a HF
`*ForTokenClassification` in `<workdir>/export_value`). Checkpoints hold both, so a resumed
run continues exactly (same prompts, samples and parameters).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxreason import losses
from jaxreason.advantages import gae
from jaxreason.algorithms.base import RunContext, check_train_source, example_format, one_of
from jaxreason.algorithms.grpo import GRPO, reference_params
from jaxreason.losses_ppo import (KL_CONTROLLERS, KL_ESTIMATORS, adaptive_kl_coef,
                                  explained_variance, kl_penalty, masked_mean, masked_whiten,
                                  token_rewards)
from jaxreason.model import llama, value_head
from jaxreason.model.config import ModelConfig
from jaxreason.train import build
from jaxreason.train.errors import ConfigError
from jaxreason.train.state import ParamTree
from jaxreason.train.step import ParamsLoss, PreStep

POLICY, VALUE = "policy", "value"
VALUE_EXPORT_SUFFIX = "_value"  # <workdir>/export_value beside <workdir>/export


def actor_critic_shapes(config: ModelConfig) -> dict[str, Any]:
    return {POLICY: llama.param_shapes(config), VALUE: value_head.param_shapes(config)}


def actor_critic_axes(config: ModelConfig) -> dict[str, Any]:
    return {POLICY: llama.param_logical_axes(config),
            VALUE: value_head.param_logical_axes(config)}


def actor_critic_init(config: ModelConfig, rng: jax.Array) -> dict[str, Any]:
    """A random actor and a critic that copies its transformer (zero head)."""
    policy = llama.init_params(config, rng)
    return {POLICY: policy, VALUE: value_head.from_policy(policy, config)}


ACTOR_CRITIC = ParamTree(shapes=actor_critic_shapes, logical_axes=actor_critic_axes,
                         init=actor_critic_init)
KL_COEF = "kl_coef"  # the adaptive controller's coefficient in `TrainState.extra`
OLD_LOGPROBS = ("recompute", "sampler")  # where pi_old's log-probs come from


def adaptive_actor_critic(kl_coef: float) -> ParamTree:
    """ACTOR_CRITIC with the adaptive KL coefficient (starting at `kl_coef`) as step-to-step
    state beside the parameters: replicated, checkpointed, updated by the pre-step."""
    return dataclasses.replace(
        ACTOR_CRITIC, extra=lambda: {KL_COEF: jnp.asarray(kl_coef, jnp.float32)})


class PPO(GRPO):
    """GRPO's prompts, rollouts, held-out evaluation and stop strings; its own update."""

    name = "ppo"
    param_tree = ACTOR_CRITIC

    def check_config(self, config: Any) -> None:
        g, p = config.grpo, config.ppo
        one_of("ppo.kl_estimator", p.kl_estimator, KL_ESTIMATORS)
        one_of("ppo.kl_controller", p.kl_controller, KL_CONTROLLERS)
        one_of("ppo.old_logprobs", p.old_logprobs, OLD_LOGPROBS)
        if p.kl_controller == "adaptive":
            for key in ("kl_target", "kl_horizon", "kl_coef"):
                if not p[key] > 0:
                    raise ConfigError(f"ppo.{key}: the adaptive KL controller needs a value "
                                      f"> 0, got {p[key]}")
        for key in ("prompts_per_step", "group_size", "max_new_tokens", "max_prompt_tokens",
                    "max_sampling_rounds"):
            if g[key] < 1:
                raise ConfigError(f"grpo.{key}: must be >= 1, got {g[key]}")
        for key in ("ppo_epochs", "num_minibatches"):
            if p[key] < 1:
                raise ConfigError(f"ppo.{key}: must be >= 1, got {p[key]}")
        for key in ("kl_coef", "value_clip", "value_coef", "entropy_coef", "critic_warmup_steps",
                    "critic_learning_rate", "critic_head_std"):
            if p[key] < 0:
                raise ConfigError(f"ppo.{key}: must be >= 0, got {p[key]}")
        for key in ("gamma", "lam"):
            if not 0 <= p[key] <= 1:
                raise ConfigError(f"ppo.{key}: must be in [0, 1], got {p[key]}")
        for key, default in (("num_iterations", 1), ("num_minibatches", 1), ("beta", 0.0)):
            if g[key] != default:
                raise ConfigError(f"grpo.{key}: PPO takes its updates and KL from the ppo "
                                  f"section (ppo.ppo_epochs, ppo.num_minibatches, ppo.kl_coef); "
                                  f"leave grpo.{key} at {default}")
        if g.epsilon_low < 0 or g.epsilon_high < 0:
            raise ConfigError("grpo.epsilon_low / epsilon_high: must be >= 0")
        if not (g.task or config.data.task or g.reward_fn):
            raise ConfigError("grpo.task: set a task (or data.task) to grade completions, or "
                              "grpo.reward_fn ('module:function')")
        rows = g.prompts_per_step * g.group_size
        if rows % p.num_minibatches:
            raise ConfigError(f"ppo.num_minibatches: {p.num_minibatches} does not divide the "
                              f"{rows} completions of a step")
        if g.prompts_per_step % jax.process_count():
            raise ConfigError(f"grpo.prompts_per_step: {g.prompts_per_step} must be divisible "
                              f"by the {jax.process_count()} processes")
        if p.critic_path and not os.path.isdir(p.critic_path):
            raise ConfigError(f"ppo.critic_path: directory {p.critic_path!r} does not exist")
        check_train_source(config, "a prompt file / directory")
        self.g, self.p, self.seed = g, p, int(config.seed)
        self.num_iterations, self.num_minibatches = p.ppo_epochs, p.num_minibatches
        self.fmt = example_format(config).prompt_format
        self.param_tree = (adaptive_actor_critic(float(p.kl_coef))
                           if p.kl_controller == "adaptive" else ACTOR_CRITIC)

    # ------------------------------------------------------------------ parameters

    def initial_params(self, ctx: RunContext) -> Any:
        """The actor from `model.path` and the critic from `ppo.critic_path` or a copy of the
        actor's transformer under a fresh head; None (both random) for a preset."""
        p, c = self.p, ctx.config
        policy = build.initial_params(c, ctx.model_config, ctx.mesh)
        if policy is None:
            if p.critic_path:
                raise ConfigError("ppo.critic_path: a critic checkpoint needs the policy's too "
                                  "(model.path), not a random preset")
            return None
        rng = jax.random.fold_in(jax.random.key(int(c.seed)), 2)
        if p.critic_path:
            value = value_head.load_pretrained(p.critic_path, ctx.model_config, mesh=ctx.mesh,
                                               rng=rng, head_std=p.critic_head_std)
        else:
            value = value_head.from_policy(policy, ctx.model_config, rng,
                                           head_std=p.critic_head_std)
            value = jax.device_put(value, value_head.param_shardings(ctx.model_config,
                                                                     ctx.mesh))
        return {POLICY: policy, VALUE: value}

    def policy_params(self, params: Any) -> Any:
        return params[POLICY]

    def optimizer(self, config: Any, total_updates: int) -> tuple[Any, Any]:
        """AdamW with a rate per part: the actor at `optim.learning_rate` (0 during the
        critic's warm-up), the critic at `ppo.critic_learning_rate`; each part clipped by its
        own gradient norm. The logged rate is the actor's."""
        from jaxreason.train.optim import make_part_optimizer

        warmup_updates = int(self.p.critic_warmup_steps) * self.updates_per_step
        optimizer, schedules = make_part_optimizer(
            config.optim, total_updates,
            {POLICY: (float(config.optim.learning_rate), warmup_updates),
             VALUE: (float(self.p.critic_learning_rate), 0)})
        return optimizer, schedules[POLICY]

    def export(self, ctx: RunContext, params: Any, directory: str) -> None:
        super().export(ctx, params[POLICY], directory)
        value_head.save_pretrained(directory.rstrip("/") + VALUE_EXPORT_SUFFIX,
                                   ctx.model_config, params[VALUE],
                                   dtype=ctx.config.checkpoint.export_dtype)

    # ------------------------------------------------------------------ the update

    def loss(self, ctx: RunContext) -> ParamsLoss:
        g, p = self.g, self.p
        loss_fn = functools.partial(
            losses.get_loss("ppo"), config=ctx.model_config, epsilon_low=g.epsilon_low,
            epsilon_high=g.epsilon_high, value_clip=p.value_clip, value_coef=p.value_coef,
            entropy_coef=p.entropy_coef, chunk_size=ctx.config.train.logprob_chunk_size)
        return lambda params, batch: loss_fn(params, batch=batch)

    def pre_step(self, ctx: RunContext) -> PreStep:
        p = self.p
        adaptive = None
        if p.kl_controller == "adaptive":
            adaptive = (float(p.kl_target), float(p.kl_horizon),
                        int(self.g.prompts_per_step * self.g.group_size))
        return ppo_pre_step(ctx.model_config, old=self.updates_per_step > 1 or p.kl_coef > 0,
                            kl_coef=float(p.kl_coef), kl_estimator=p.kl_estimator,
                            gamma=float(p.gamma), lam=float(p.lam),
                            whiten=bool(p.whiten_advantages),
                            chunk_size=ctx.config.train.logprob_chunk_size,
                            adaptive_kl=adaptive,
                            sampler_old_logprobs=p.old_logprobs == "sampler")

    def frozen_params(self, ctx: RunContext) -> Any:
        if self.p.kl_coef <= 0:
            return None
        return reference_params(ctx)  # the start model

    # ------------------------------------------------------------------ batches

    def start(self, ctx: RunContext, state: Any) -> None:
        super().start(ctx, dataclasses.replace(state, params=state.params[POLICY]))

    def next_batch(self, state: Any) -> dict[str, Any]:
        step = int(jax.device_get(state.step))
        rollouts = self.collector.collect(state.params[POLICY], step)
        rows = dict(rollouts.rows)
        rows.pop("advantages")  # GRPO's group estimate; PPO's come from the critic
        actor_on = float(step >= int(self.p.critic_warmup_steps))
        rows["actor_update"] = np.full(len(rows["rewards"]), actor_on, np.float32)
        return {**rows, "host_metrics": rollouts.metrics}


def ppo_pre_step(model_config: ModelConfig, *, old: bool, kl_coef: float, kl_estimator: str,
                 gamma: float, lam: float, whiten: bool,
                 chunk_size: int = losses.DEFAULT_CHUNK_SIZE,
                 adaptive_kl: tuple[float, float, int] | None = None,
                 sampler_old_logprobs: bool = False) -> PreStep:
    """The pre-step of PPO (see the module docstring): fields old_logprobs (if `old`),
    old_values, advantages, returns `[batch, length]`, and metrics of the batch.

    adaptive_kl: (target, horizon, completions per step) of the adaptive controller; the
    coefficient is then `batch["state"]["kl_coef"]` (the state's `extra`) and the next one,
    from this batch's KL, is returned as the field "state"."""
    def pre(params: Any, frozen: Any, batch: dict[str, Any]) -> dict[str, Any]:
        coef: Any = kl_coef if adaptive_kl is None else batch["state"][KL_COEF]
        mask = batch["loss_mask"].astype(jnp.float32)
        values = value_head.batch_values(params[VALUE], model_config, batch) * mask
        out: dict[str, Any] = {"old_values": values}
        kl = jnp.zeros_like(mask)
        if old and sampler_old_logprobs:
            out["old_logprobs"] = batch["sampler_logprobs"] * mask
        elif old:
            out["old_logprobs"] = losses.batch_token_logprobs(params[POLICY], model_config,
                                                              batch, chunk_size=chunk_size)
        if kl_coef > 0:
            ref = losses.batch_token_logprobs(frozen, model_config, batch, chunk_size=chunk_size)
            kl = kl_penalty(out["old_logprobs"], ref, kl_estimator) * mask
        rewards = token_rewards(batch["rewards"], kl, mask, coef)
        advantages, returns = gae(rewards, values, mask, gamma, lam)
        out["returns"] = returns
        out["advantages"] = masked_whiten(advantages, mask) if whiten else advantages
        sequences = jnp.maximum(jnp.sum(jnp.any(mask > 0, axis=1)), 1)
        out["metrics"] = {
            "returns_mean": masked_mean(returns, mask),
            "values_old_mean": masked_mean(values, mask),
            "advantages_mean": masked_mean(advantages, mask),
            "explained_variance": explained_variance(returns, values, mask),
            "kl": jnp.sum(kl) / sequences,  # KL(pi_old || pi_ref) per completion
            "kl_coef": jnp.asarray(coef, jnp.float32),
            "token_reward_mean": masked_mean(rewards, mask),
        }
        if adaptive_kl is not None:
            target, horizon, completions = adaptive_kl
            out["state"] = {KL_COEF: adaptive_kl_coef(
                jnp.asarray(coef, jnp.float32), out["metrics"]["kl"], target=target,
                horizon=horizon, completions=completions)}
        return out
    return pre


def train(config: Any, workdir: str) -> dict[str, Any]:
    """The "ppo" trainer."""
    from jaxreason.train import run

    return run.run(config, workdir, "ppo")
