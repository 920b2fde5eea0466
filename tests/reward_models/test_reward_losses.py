"""Reward-model losses against NumPy: the formulas, and the losses on packed rows against the
value head run on each sequence alone."""

from __future__ import annotations

import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import rm_toys  # noqa: E402

from jaxreason import losses  # noqa: E402
from jaxreason.data.rows import FirstFit, pair_rows, score_rows  # noqa: E402
from jaxreason.losses_rm import bce_terms, bradley_terry_terms  # noqa: E402
from jaxreason.model import value_head  # noqa: E402
from jaxreason.model.config import preset_config  # noqa: E402


def np_log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def test_bce_terms_match_numpy_cross_entropy_with_soft_labels():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=50) * 4
    labels = rng.uniform(size=50)
    labels[:5] = [0.0, 1.0, 0.5, 0.0, 1.0]
    expected = -(labels * np_log_sigmoid(scores) + (1 - labels) * np_log_sigmoid(-scores))
    np.testing.assert_allclose(bce_terms(jnp.asarray(scores), jnp.asarray(labels)), expected,
                               rtol=1e-5, atol=1e-6)
    assert float(bce_terms(jnp.zeros(()), jnp.ones(()))) == pytest.approx(np.log(2))


def test_bradley_terry_terms_match_numpy():
    rng = np.random.default_rng(1)
    chosen, rejected = rng.normal(size=20) * 3, rng.normal(size=20) * 3
    np.testing.assert_allclose(bradley_terry_terms(jnp.asarray(chosen), jnp.asarray(rejected)),
                               -np_log_sigmoid(chosen - rejected), rtol=1e-5, atol=1e-6)
    assert float(bradley_terry_terms(jnp.ones(()), jnp.ones(()))) == pytest.approx(np.log(2))


@pytest.fixture(scope="module")
def model():
    config = preset_config("llama-tiny", vocab_size=64, hidden_size=32, intermediate_size=64,
                           num_layers=1, num_heads=2, num_kv_heads=1, head_dim=16)
    init = jax.jit(value_head.init_params, static_argnums=0, static_argnames="head_std")
    params = init(config, jax.random.key(0), head_std=0.5)
    return config, params


def scored(rng, prompt_len, steps):
    """A scored example with `steps` scored tokens after a prompt (weights after each)."""
    n = prompt_len + steps * 3
    tokens = rng.integers(3, 64, size=n + 1).astype(np.int32)
    weights = np.zeros(n + 1, bool)
    labels = np.zeros(n + 1, np.float32)
    ends = [prompt_len + 3 * j + 2 for j in range(steps)]
    for end in ends:
        weights[end + 1] = True
        labels[end + 1] = rng.uniform()
    return {"tokens": tokens, "loss_weights": weights, "labels": labels}, ends


def alone_values(config, params, tokens):
    """Values of one sequence (its input tokens) alone."""
    return rm_toys.values_alone(params, config, tokens[:-1])


def test_bce_loss_on_packed_rows_equals_numpy_on_each_sequence_alone(model):
    config, params = model
    rng = np.random.default_rng(2)
    examples = [scored(rng, int(rng.integers(2, 6)), int(rng.integers(1, 4))) for _ in range(7)]
    plan = FirstFit(3, 32)
    for example, _ in examples:
        assert plan.add(len(example["tokens"]) - 1)
    batch = score_rows([e for e, _ in examples], 3, 32, placements=plan.placements)
    out = jax.jit(losses.get_loss("reward_bce"), static_argnums=1)(
        params, config, {k: jnp.asarray(v) for k, v in batch.items()})
    scores, labels = [], []
    for example, ends in examples:
        values = alone_values(config, params, example["tokens"])
        scores.extend(values[ends])
        labels.extend(example["labels"][[e + 1 for e in ends]])
    scores, labels = np.asarray(scores), np.asarray(labels)
    expected = -(labels * np_log_sigmoid(scores) + (1 - labels) * np_log_sigmoid(-scores))
    assert float(out.weight) == len(scores)
    assert float(out.total) == pytest.approx(expected.sum(), rel=1e-4)
    accuracy = np.mean((scores > 0) == (labels > 0.5))
    assert float(out.metrics["accuracy"][0] / out.metrics["accuracy"][1]) == pytest.approx(
        accuracy)


def test_bradley_terry_loss_on_pair_rows_equals_numpy_on_each_response_alone(model):
    config, params = model
    rng = np.random.default_rng(3)
    pairs = []
    for _ in range(5):
        prompt = int(rng.integers(2, 6))
        pairs.append({"chosen": scored(rng, prompt, 1)[0], "rejected": scored(rng, prompt, 1)[0]})
    plan = FirstFit(2, 48)
    for pair in pairs:
        assert plan.add(len(pair["chosen"]["tokens"]) + len(pair["rejected"]["tokens"]) - 2)
    batch = pair_rows(pairs, 2, 48, placements=plan.placements)
    out = jax.jit(losses.get_loss("reward_bt"), static_argnums=1)(
        params, config, {k: jnp.asarray(v) for k, v in batch.items()})
    def last_score(example):
        return alone_values(config, params, example["tokens"])[len(example["tokens"]) - 2]
    margins = np.asarray([last_score(p["chosen"]) - last_score(p["rejected"]) for p in pairs])
    assert float(out.weight) == 5
    assert float(out.total) == pytest.approx(-np_log_sigmoid(margins).sum(), rel=1e-4)
    assert float(out.metrics["margin"][0]) == pytest.approx(margins.sum(), rel=1e-4, abs=1e-5)
