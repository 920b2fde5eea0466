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


# PPO's actor + critic objective and its per-token arithmetic live in their own module
LOSSES.register("ppo", "jaxreason.losses_ppo:ppo_loss")


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


# ----------------------------------------------------------------------------- preference pairs

PREFERENCE_LOSSES = ("dpo", "dpo_nll", "ipo", "orpo")


class PairSums(NamedTuple):
    """Per-pair statistics `[rows, slots]` (float32) of preference rows (`data.rows.pair_rows`:
    a row holds whole pairs, the chosen sequence of its k-th pair is segment 2k - 1 and the
    rejected one segment 2k, so a pair never straddles two micro-batches or two shards).

    chosen_logp / rejected_logp: summed log-probs of the response tokens (loss_mask);
    chosen_tokens / rejected_tokens: response token counts; chosen_prompt_tokens: prompt
    tokens of the chosen sequence; ref_chosen_logp / ref_rejected_logp: the frozen reference's
    summed log-probs (the `ref_logps` field; 0 without it); valid: 1 where a pair sits.
    """

    chosen_logp: jax.Array
    rejected_logp: jax.Array
    chosen_tokens: jax.Array
    rejected_tokens: jax.Array
    chosen_prompt_tokens: jax.Array
    ref_chosen_logp: jax.Array
    ref_rejected_logp: jax.Array
    valid: jax.Array


def pair_sums(token_logp: jax.Array, batch: Batch) -> PairSums:
    """`PairSums` of a preference batch from per-token log-probs `[rows, length]`."""
    segment_ids = batch["segment_ids"]
    rows, length = segment_ids.shape
    mask = batch["loss_mask"].astype(jnp.float32)

    def by_pair(values: jax.Array) -> tuple[jax.Array, jax.Array]:
        sums = sequence_sums(values.astype(jnp.float32), segment_ids)[:, 1:]  # segments 1..T
        if length % 2:
            sums = jnp.pad(sums, ((0, 0), (0, 1)))
        sums = sums.reshape(rows, -1, 2)
        return sums[..., 0], sums[..., 1]

    chosen_logp, rejected_logp = by_pair(token_logp * mask)
    chosen_tokens, rejected_tokens = by_pair(mask)
    chosen_positions, _ = by_pair((segment_ids > 0).astype(jnp.float32))
    if "ref_logps" in batch:
        ref_chosen, ref_rejected = by_pair(batch["ref_logps"])
    else:
        ref_chosen = ref_rejected = jnp.zeros_like(chosen_logp)
    valid = ((chosen_tokens > 0) & (rejected_tokens > 0)).astype(jnp.float32)
    # a sequence of p prompt and c response tokens spans p + c - 1 positions
    prompt_tokens = jnp.where(valid > 0, chosen_positions - chosen_tokens + 1, 0.0)
    return PairSums(chosen_logp, rejected_logp, chosen_tokens, rejected_tokens, prompt_tokens,
                    ref_chosen, ref_rejected, valid)


def _log_sigmoid(x: jax.Array) -> jax.Array:
    return jax.nn.log_sigmoid(x)


def _safe(x: jax.Array, valid: jax.Array) -> jax.Array:
    return jnp.where(valid > 0, x, 1.0)


def pair_losses(kind: str, s: PairSums, *, beta: float = 0.1, label_smoothing: float = 0.0,
                alpha: float = 1.0, nll_on_prompt: bool = False, orpo_lambda: float = 0.1
                ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Per-pair losses `[rows, slots]` (0 where no pair sits) and per-pair metric values.

    With delta_w = logp(y_w) - ref(y_w), delta_l = logp(y_l) - ref(y_l) (sums over response
    tokens) and h = beta * (delta_w - delta_l):
    - dpo: -(1 - eps) log sigmoid(h) - eps log sigmoid(-h)  (eps = label_smoothing;
      conservative DPO; eps = 0 is DPO);
    - dpo_nll (the Iterative RPO loss): dpo + alpha * (-logp(y_w) / |y_w|), the chosen
      response's mean NLL per token (`nll_on_prompt`: divided by |x| + |y_w| instead);
    - ipo: (delta_w - delta_l - 1 / (2 beta))^2  (beta plays IPO's tau);
    - orpo (no reference): with l(y) = logp(y) / |y| (length-normalized log-likelihood) and
      log odds(y) = l(y) - log(1 - exp(l(y))), loss = -l(y_w) + orpo_lambda *
      -log sigmoid(log odds(y_w) - log odds(y_l)).
    """
    if kind not in PREFERENCE_LOSSES:
        raise ValueError(f"kind must be one of {PREFERENCE_LOSSES}, got {kind!r}")
    v = s.valid
    chosen_mean = s.chosen_logp / _safe(s.chosen_tokens, v)
    rejected_mean = s.rejected_logp / _safe(s.rejected_tokens, v)
    delta_w = s.chosen_logp - s.ref_chosen_logp
    delta_l = s.rejected_logp - s.ref_rejected_logp
    h = beta * (delta_w - delta_l)
    metrics = {"nll": -chosen_mean}
    if kind in ("dpo", "dpo_nll"):
        loss = -(1.0 - label_smoothing) * _log_sigmoid(h) - label_smoothing * _log_sigmoid(-h)
        metrics["dpo_loss"] = loss
        if kind == "dpo_nll":
            denominator = s.chosen_tokens + (s.chosen_prompt_tokens if nll_on_prompt else 0.0)
            loss = loss + alpha * (-s.chosen_logp / _safe(denominator, v))
    elif kind == "ipo":
        loss = (delta_w - delta_l - 1.0 / (2.0 * beta)) ** 2
    else:
        def log_odds(mean_logp: jax.Array) -> jax.Array:
            mean_logp = jnp.minimum(mean_logp, -1e-6)  # P < 1 (P = 1 has infinite odds)
            return mean_logp - jnp.log(-jnp.expm1(mean_logp))
        log_odds_ratio = log_odds(chosen_mean) - log_odds(rejected_mean)
        odds_loss = -_log_sigmoid(log_odds_ratio)
        loss = -chosen_mean + orpo_lambda * odds_loss
        metrics["log_odds_ratio"] = log_odds_ratio
        metrics["odds_ratio_loss"] = odds_loss
        h = log_odds_ratio  # ORPO's implicit preference: the log odds ratio
    metrics.update({
        "rewards_chosen": beta * delta_w, "rewards_rejected": beta * delta_l,
        "reward_margin": beta * (delta_w - delta_l),
        "reward_accuracy": (h > 0).astype(jnp.float32),
        "chosen_logp": s.chosen_logp, "rejected_logp": s.rejected_logp,
        "ref_chosen_logp": s.ref_chosen_logp, "ref_rejected_logp": s.ref_rejected_logp,
        "chosen_tokens": s.chosen_tokens, "rejected_tokens": s.rejected_tokens,
    })
    if kind == "orpo":
        for key in ("rewards_chosen", "rewards_rejected", "reward_margin", "ref_chosen_logp",
                    "ref_rejected_logp"):
            del metrics[key]
    return jnp.where(v > 0, loss, 0.0), {k: jnp.where(v > 0, x, 0.0) for k, x in metrics.items()}


def preference_loss(params: llama.Params, config: ModelConfig, batch: Batch, *, kind: str,
                    beta: float = 0.1, label_smoothing: float = 0.0, alpha: float = 1.0,
                    nll_on_prompt: bool = False, orpo_lambda: float = 0.1,
                    chunk_size: int = DEFAULT_CHUNK_SIZE) -> LossOutput:
    """A pair objective (`pair_losses`) on preference rows: the total is the sum of the
    per-pair losses and the weight the number of pairs, so micro-batches and shards add up to
    the mean over all pairs of the global batch (the step logs their number as
    `loss_weight`). batch: the row fields of `rows.pair_rows`
    (input_ids, targets, positions, segment_ids, loss_mask on the responses) and, except for
    ORPO, ref_logps (the reference's summed response log-prob of each sequence, stored at its
    first response position)."""
    logp = batch_token_logprobs(params, config, batch, chunk_size=chunk_size)
    s = pair_sums(logp, batch)
    per_pair, values = pair_losses(kind, s, beta=beta, label_smoothing=label_smoothing,
                                   alpha=alpha, nll_on_prompt=nll_on_prompt,
                                   orpo_lambda=orpo_lambda)
    pairs = jnp.sum(s.valid)
    sg = jax.lax.stop_gradient
    metrics = {name: (sg(jnp.sum(x)), pairs) for name, x in values.items()}
    return LossOutput(jnp.sum(per_pair), pairs, metrics)


@register_loss("dpo")
def dpo_loss(params: llama.Params, config: ModelConfig, batch: Batch, *, beta: float = 0.1,
             label_smoothing: float = 0.0, chunk_size: int = DEFAULT_CHUNK_SIZE) -> LossOutput:
    """DPO (sigmoid; `label_smoothing` > 0: conservative DPO). See `pair_losses`."""
    return preference_loss(params, config, batch, kind="dpo", beta=beta,
                           label_smoothing=label_smoothing, chunk_size=chunk_size)


@register_loss("dpo_nll")
def dpo_nll_loss(params: llama.Params, config: ModelConfig, batch: Batch, *, beta: float = 0.1,
                 alpha: float = 1.0, label_smoothing: float = 0.0, nll_on_prompt: bool = False,
                 chunk_size: int = DEFAULT_CHUNK_SIZE) -> LossOutput:
    """The Iterative RPO loss: DPO + alpha x the chosen response's per-token NLL."""
    return preference_loss(params, config, batch, kind="dpo_nll", beta=beta, alpha=alpha,
                           label_smoothing=label_smoothing, nll_on_prompt=nll_on_prompt,
                           chunk_size=chunk_size)


@register_loss("ipo")
def ipo_loss(params: llama.Params, config: ModelConfig, batch: Batch, *, beta: float = 0.1,
             chunk_size: int = DEFAULT_CHUNK_SIZE) -> LossOutput:
    """IPO: squared distance of the log-ratio margin from 1 / (2 beta)."""
    return preference_loss(params, config, batch, kind="ipo", beta=beta, chunk_size=chunk_size)


@register_loss("orpo")
def orpo_loss(params: llama.Params, config: ModelConfig, batch: Batch, *,
              orpo_lambda: float = 0.1, chunk_size: int = DEFAULT_CHUNK_SIZE) -> LossOutput:
    """ORPO: chosen NLL + lambda x the odds-ratio loss (no reference model)."""
    return preference_loss(params, config, batch, kind="orpo", orpo_lambda=orpo_lambda,
                           chunk_size=chunk_size)


# ----------------------------------------------------------------------------- reward models

# objectives of a backbone + scalar head (`jaxreason/losses_rm.py`, trainer "reward_model")
LOSSES.register("reward_bce", "jaxreason.losses_rm:reward_bce_loss")  # outcome / process RM
LOSSES.register("reward_bt", "jaxreason.losses_rm:reward_bt_loss")  # Bradley-Terry RM
