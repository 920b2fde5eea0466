"""Reward-model objectives (registered lazily in `jaxreason.losses.LOSSES`).

A reward model is the decoder with a scalar head (`model/value_head.py`); its score of a
prefix is the head's value at the prefix's last token. Rows come from `data.rows`:

- `reward_bce` (outcome RM: one scored position per solution; process RM: one per step):
  binary cross-entropy with logits between the score s and the label y in [0, 1] (soft labels
  welcome) at every position of `loss_mask`, labels in `reward_labels`:
  `softplus(s) - y * s = -(y log sigmoid(s) + (1 - y) log sigmoid(-s))`. The weight is the
  number of scored positions, so micro-batches and shards add up to the mean over all of them.
- `reward_bt` (Bradley-Terry RM): pair rows (`rows.pair_rows`, chosen = segment 2k - 1,
  rejected = 2k, one scored position per sequence); per pair `-log sigmoid(r_w - r_l)`, the
  weight is the number of pairs. The per-pair scores are `losses.pair_sums` of the
  position scores (each sequence's one scored position is its segment's sum).

`bce_terms` and `bradley_terry_terms` are the formulas on plain arrays (checked against NumPy).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxreason.losses import Batch, LossOutput, pair_sums
from jaxreason.model import value_head
from jaxreason.model.config import ModelConfig


def bce_terms(scores: jax.Array, labels: jax.Array) -> jax.Array:
    """Per-position binary cross-entropy of logits `scores` against labels in [0, 1]."""
    scores = scores.astype(jnp.float32)
    return jax.nn.softplus(scores) - labels.astype(jnp.float32) * scores


def bradley_terry_terms(chosen: jax.Array, rejected: jax.Array) -> jax.Array:
    """Per-pair `-log sigmoid(chosen - rejected)`."""
    return jax.nn.softplus(-(chosen.astype(jnp.float32) - rejected.astype(jnp.float32)))


def reward_bce_loss(params: value_head.ValueParams, config: ModelConfig, batch: Batch,
                    **_: Any) -> LossOutput:
    """BCE of the scores at the `loss_mask` positions against `reward_labels` (see the
    module docstring). Metrics per scored position: accuracy (sign of s agrees with
    y > 0.5), score (mean logit), prob (mean sigmoid), label (mean label)."""
    scores = value_head.batch_values(params, config, batch)
    mask = batch["loss_mask"].astype(jnp.float32)
    labels = batch["reward_labels"].astype(jnp.float32)
    count = jnp.sum(mask)
    sg = jax.lax.stop_gradient
    agree = ((scores > 0) == (labels > 0.5)).astype(jnp.float32)
    metrics = {"accuracy": (sg(jnp.sum(agree * mask)), count),
               "score": (sg(jnp.sum(scores * mask)), count),
               "prob": (sg(jnp.sum(jax.nn.sigmoid(scores) * mask)), count),
               "label": (jnp.sum(labels * mask), count)}
    return LossOutput(jnp.sum(bce_terms(scores, labels) * mask), count, metrics)


def reward_bt_loss(params: value_head.ValueParams, config: ModelConfig, batch: Batch,
                   **_: Any) -> LossOutput:
    """Bradley-Terry loss of pair rows (see the module docstring). Metrics per pair:
    accuracy (r_w > r_l), margin (r_w - r_l), chosen_score, rejected_score."""
    scores = value_head.batch_values(params, config, batch)
    s = pair_sums(scores, batch)
    chosen, rejected, valid = s.chosen_logp, s.rejected_logp, s.valid
    pairs = jnp.sum(valid)
    sg = jax.lax.stop_gradient
    metrics = {"accuracy": (sg(jnp.sum((chosen > rejected) * valid)), pairs),
               "margin": (sg(jnp.sum((chosen - rejected) * valid)), pairs),
               "chosen_score": (sg(jnp.sum(chosen * valid)), pairs),
               "rejected_score": (sg(jnp.sum(rejected * valid)), pairs)}
    total = jnp.sum(jnp.where(valid > 0, bradley_terry_terms(chosen, rejected), 0.0))
    return LossOutput(total, pairs, metrics)
