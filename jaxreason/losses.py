"""Training losses: chunked token log-probs and a registry of objectives by name.

Every objective needs log pi(y_t | y_<t) of given tokens. With 128k vocabularies the float32
logits of a whole batch (`[batch, length, vocab]`) are the largest tensor of a step, so
`token_logprobs` projects onto the vocabulary chunk by chunk along the sequence under
`jax.checkpoint`: only one chunk's logits exist at a time, in the forward pass and in the
backward pass alike.

Objectives return a `LossOutput` of *sums* plus the normaliser (`weight`) instead of a mean.
Sums add up across micro-batches and data-parallel shards, so gradient accumulation and any
sharding of the batch give exactly the mean over the whole global batch (a mean of micro-batch
means would weight short micro-batches wrongly). Objectives register themselves here with
`@register_loss(name)` (SFT and GRPO now; DPO, PPO, ... the same way) and the train step stays
unchanged.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp

from jaxreason.model import llama
from jaxreason.model.config import ModelConfig
from jaxreason.parallel import constrain
from jaxreason.registry import Registry

Batch = Mapping[str, jax.Array]

DEFAULT_CHUNK_SIZE = 512


class LossOutput(NamedTuple):
    """An objective on one (micro-)batch.

    total: scalar, the sum to differentiate; the loss is `total / weight`.
    weight: scalar normaliser (token count, sequence count, pair count ...), no gradient.
    metrics: name -> (sum, count); the reported value is sum / count over the global batch.
    """

    total: jax.Array
    weight: jax.Array
    metrics: dict[str, tuple[jax.Array, jax.Array]]


LossFn = Callable[..., LossOutput]  # (params, config, batch, **options) -> LossOutput

LOSSES: Registry[LossFn] = Registry("loss")


def register_loss(name: str) -> Callable[[LossFn], LossFn]:
    """Decorator: make an objective available to configs as `train.loss = name` (a second,
    different objective under the same name raises ValueError)."""
    return LOSSES.register(name)


def get_loss(name: str) -> LossFn:
    return LOSSES.get(name)


def loss_names() -> list[str]:
    return LOSSES.names()


# ----------------------------------------------------------------------------- log-probs

def logprobs_from_hidden(params: llama.Params, config: ModelConfig, hidden: jax.Array,
                         targets: jax.Array, *, chunk_size: int = DEFAULT_CHUNK_SIZE,
                         return_entropy: bool = False) -> jax.Array | tuple[jax.Array, jax.Array]:
    """log p(targets) `[batch, length]` float32 from final hidden states `[batch, length, hidden]`.

    The vocabulary projection and log-softmax run over `chunk_size` positions at a time inside
    `lax.map`, each chunk rematerialized in the backward pass, so peak memory holds one
    `[batch, chunk_size, vocab]` float32 block. With `return_entropy`, also the entropy of each
    position's predictive distribution `[batch, length]` (for RL diagnostics / bonuses).
    """
    b, t, h = hidden.shape
    c = max(1, min(chunk_size, t))
    n = math.ceil(t / c)
    if n * c != t:
        hidden = jnp.pad(hidden, ((0, 0), (0, n * c - t), (0, 0)))
        targets = jnp.pad(targets, ((0, 0), (0, n * c - t)))
    hidden_chunks = hidden.reshape(b, n, c, h).swapaxes(0, 1)  # [n, b, c, h]
    target_chunks = targets.reshape(b, n, c).swapaxes(0, 1)  # [n, b, c]
    hidden_chunks = constrain(hidden_chunks, (None, "batch", "length", "act_embed"))
    target_chunks = constrain(target_chunks, (None, "batch", "length"))

    @jax.checkpoint
    def one_chunk(args: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        hidden_chunk, target_chunk = args
        logits = llama.lm_head(params, config, hidden_chunk)  # [b, c, vocab] float32
        log_norm = jax.nn.logsumexp(logits, axis=-1)
        picked = jnp.take_along_axis(logits, target_chunk[..., None], axis=-1)[..., 0]
        logp = picked - log_norm
        if not return_entropy:
            return logp, jnp.zeros_like(logp)
        probs = jnp.exp(logits - log_norm[..., None])
        return logp, log_norm - jnp.sum(probs * logits, axis=-1)

    logp, entropy = jax.lax.map(one_chunk, (hidden_chunks, target_chunks))
    logp = logp.swapaxes(0, 1).reshape(b, n * c)[:, :t]
    if not return_entropy:
        return logp
    return logp, entropy.swapaxes(0, 1).reshape(b, n * c)[:, :t]


def token_logprobs(params: llama.Params, config: ModelConfig, input_ids: jax.Array,
                   targets: jax.Array, *, positions: jax.Array | None = None,
                   attention_mask: jax.Array | None = None,
                   segment_ids: jax.Array | None = None,
                   chunk_size: int = DEFAULT_CHUNK_SIZE,
                   return_entropy: bool = False) -> jax.Array | tuple[jax.Array, jax.Array]:
    """log pi(targets[b, t] | input_ids[b, :t+1]) `[batch, length]` float32, chunked over length.

    input_ids, targets: `[batch, length]` int; `targets` is usually `input_ids` shifted left by
    one. positions / attention_mask / segment_ids as in `llama.forward` (packed rows: segment
    ids > 0 for real tokens, positions restarting per segment). Masking of prompt and padding
    positions is the caller's business (multiply by a loss mask).
    """
    hidden, _ = llama.forward(params, config, input_ids, positions, attention_mask,
                              segment_ids=segment_ids, return_hidden=True)
    return logprobs_from_hidden(params, config, hidden, targets, chunk_size=chunk_size,
                                return_entropy=return_entropy)


def sequence_sums(values: jax.Array, segment_ids: jax.Array) -> jax.Array:
    """Per-segment sums `[batch, length + 1]` of `values [batch, length]` (index = segment id;
    id 0 is padding). Segments are the examples of packed rows; an unpacked row is segment 1."""
    b, t = values.shape
    rows = jnp.arange(b, dtype=jnp.int32)[:, None] * (t + 1)
    flat = (rows + segment_ids.astype(jnp.int32)).reshape(-1)
    sums = jax.ops.segment_sum(values.reshape(-1), flat, num_segments=b * (t + 1))
    return sums.reshape(b, t + 1)


def batch_token_logprobs(params: llama.Params, config: ModelConfig, batch: Batch, *,
                         chunk_size: int = DEFAULT_CHUNK_SIZE) -> jax.Array:
    """`token_logprobs` of a training batch with the fields `jaxreason.data.rows` builds:
    input_ids, targets, positions, segment_ids `[batch, length]`."""
    segment_ids = batch["segment_ids"]
    return token_logprobs(params, config, batch["input_ids"], batch["targets"],
                          positions=batch["positions"], attention_mask=segment_ids > 0,
                          segment_ids=segment_ids, chunk_size=chunk_size)


# ----------------------------------------------------------------------------- objectives

AVERAGING = ("token", "sequence")


@register_loss("sft")
def sft_loss(params: llama.Params, config: ModelConfig, batch: Batch, *,
             averaging: str = "token", chunk_size: int = DEFAULT_CHUNK_SIZE) -> LossOutput:
    """Negative log-likelihood of the tokens where `loss_mask` is set.

    batch: input_ids, targets, positions, segment_ids, loss_mask `[batch, length]`.
    averaging: "token" (every target token weighs the same: mean over all loss tokens of the
    global batch) or "sequence" (each example's mean NLL weighs the same: mean over examples).
    """
    if averaging not in AVERAGING:
        raise ValueError(f"averaging must be one of {AVERAGING}, got {averaging!r}")
    logp = batch_token_logprobs(params, config, batch, chunk_size=chunk_size)
    mask = batch["loss_mask"].astype(jnp.float32)
    nll = -logp * mask
    token_sum, token_count = jnp.sum(nll), jnp.sum(mask)
    if averaging == "token":
        total, weight = token_sum, token_count
    else:
        seq_nll = sequence_sums(nll, batch["segment_ids"])
        seq_tokens = sequence_sums(mask, batch["segment_ids"])
        has_tokens = seq_tokens > 0
        total = jnp.sum(jnp.where(has_tokens, seq_nll / jnp.where(has_tokens, seq_tokens, 1), 0))
        weight = jnp.sum(has_tokens).astype(jnp.float32)
    metrics = {"nll_per_token": (token_sum, token_count)}
    return LossOutput(total, weight, metrics)


def mean_loss(output: LossOutput) -> tuple[jax.Array, dict[str, jax.Array]]:
    """(loss, metrics) means of one LossOutput (for evaluation and tests)."""
    def div(a: Any, b: Any) -> jax.Array:
        return a / jnp.where(b > 0, b, 1)
    return div(output.total, output.weight), {k: div(s, c) for k, (s, c) in
                                              output.metrics.items()}


# ----------------------------------------------------------------------------- GRPO

GRPO_NORMALIZERS = ("token", "sequence", "constant")


@register_loss("grpo")
def grpo_loss(params: llama.Params, config: ModelConfig, batch: Batch, *,
              epsilon_low: float = 0.2, epsilon_high: float = 0.2, beta: float = 0.0,
              normalizer: str = "token", constant_normalizer: float = 1024.0,
              chunk_size: int = DEFAULT_CHUNK_SIZE) -> LossOutput:
    """Clipped policy-gradient surrogate of GRPO and its variants (`algorithms/grpo.py`).

    batch: input_ids, targets, positions, segment_ids, loss_mask (completion tokens that count)
    `[batch, length]`; advantages `[batch]` (one per completion) or `[batch, length]`;
    old_logprobs `[batch, length]` (log pi_old of the targets from the training forward of the
    sampling-time parameters; absent = the current parameters are the sampling-time ones, so
    the loss's own log-probs, without gradient, serve); with beta > 0 ref_logprobs; optional
    sampler_logprobs (the sampler's log-probs, for the logged trainer-vs-sampler gap).
    One completion per row (rows are not packed).

    per token: ratio = exp(logp - old); surrogate = min(ratio * A, clip(ratio, 1 - eps_low,
    1 + eps_high) * A); kl = exp(ref - logp) - (ref - logp) - 1 (k3); loss_t = -(surrogate -
    beta * kl). normalizer: "token" = mean over all completion tokens of the global batch
    (DAPO), "sequence" = mean over completions of each completion's token mean (GRPO),
    "constant" = sum / (constant_normalizer * completions) (Dr. GRPO).
    """
    if normalizer not in GRPO_NORMALIZERS:
        raise ValueError(f"normalizer must be one of {GRPO_NORMALIZERS}, got {normalizer!r}")
    logp, entropy = token_logprobs(params, config, batch["input_ids"], batch["targets"],
                                   positions=batch["positions"],
                                   attention_mask=batch["segment_ids"] > 0,
                                   segment_ids=batch["segment_ids"], chunk_size=chunk_size,
                                   return_entropy=True)
    mask = batch["loss_mask"].astype(jnp.float32)
    advantages = batch["advantages"].astype(jnp.float32)
    if advantages.ndim == 1:
        advantages = advantages[:, None]
    sg = jax.lax.stop_gradient
    old = batch["old_logprobs"] if "old_logprobs" in batch else sg(logp)
    log_ratio = logp - old
    ratio = jnp.exp(log_ratio)
    clipped = jnp.clip(ratio, 1.0 - epsilon_low, 1.0 + epsilon_high)
    surrogate = jnp.minimum(ratio * advantages, clipped * advantages)
    per_token = -surrogate
    kl = jnp.zeros_like(logp)
    if beta > 0:
        ref_delta = batch["ref_logprobs"] - logp
        kl = jnp.exp(ref_delta) - ref_delta - 1.0
        per_token = per_token + beta * kl
    per_token = per_token * mask
    tokens = jnp.sum(mask)
    sequences = jnp.sum(jnp.any(mask > 0, axis=1)).astype(jnp.float32)
    if normalizer == "token":
        total, weight = jnp.sum(per_token), tokens
    elif normalizer == "sequence":
        seq_tokens = jnp.sum(mask, axis=1)
        total = jnp.sum(jnp.sum(per_token, axis=1) / jnp.maximum(seq_tokens, 1.0))
        weight = sequences
    else:
        total, weight = jnp.sum(per_token), sequences * constant_normalizer
    is_clipped = (ratio * advantages != surrogate) & (mask > 0)
    metrics = {
        "clip_fraction": (jnp.sum(is_clipped.astype(jnp.float32)), tokens),
        "kl": (sg(jnp.sum(kl * mask)), tokens),
        "entropy": (sg(jnp.sum(entropy * mask)), tokens),
        "ratio": (sg(jnp.sum(ratio * mask)), tokens),
        "logprob_gap_old": (sg(jnp.sum(jnp.abs(log_ratio) * mask)), tokens),
    }
    if "sampler_logprobs" in batch:
        gap = jnp.abs(sg(old) - batch["sampler_logprobs"]) * mask
        metrics["logprob_gap_sampler"] = (jnp.sum(gap), tokens)
    return LossOutput(total, weight, metrics)
