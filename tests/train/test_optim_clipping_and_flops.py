"""Global-norm clipping really clips, and the MFU FLOPs-per-token formula against a hand count."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from ml_collections import ConfigDict

from jaxreason.model import ModelConfig, load_config
from jaxreason.train.metrics import mfu
from jaxreason.train.optim import make_optimizer

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hf_configs"


def _optim(grad_clip: float) -> ConfigDict:
    return ConfigDict(dict(learning_rate=0.1, schedule="constant", warmup_steps=0,
                           final_lr_ratio=0.0, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0,
                           grad_clip=grad_clip))


def _first_adam_moments(grads, clip: float):
    optimizer, _ = make_optimizer(_optim(clip), total_steps=10)
    params = jax.tree.map(jnp.zeros_like, grads)
    state = optimizer.init(params)
    _, state = optimizer.update(grads, state, params)
    (mu,) = [s.mu for s in jax.tree.leaves(state, is_leaf=lambda s: isinstance(s, optax.ScaleByAdamState))
             if isinstance(s, optax.ScaleByAdamState)]
    return mu


def test_global_norm_clipping_scales_the_gradient_to_the_threshold():
    grads = {"w": jnp.array([3.0, 4.0]), "norm": jnp.array([12.0])}  # global norm 13
    # Adam's first moment after one step is (1 - b1) * g: it shows the gradient Adam received.
    mu = _first_adam_moments(grads, clip=1.0)
    np.testing.assert_allclose(mu["w"], 0.1 * np.array([3.0, 4.0]) / 13.0, rtol=1e-6)
    np.testing.assert_allclose(mu["norm"], 0.1 * np.array([12.0]) / 13.0, rtol=1e-6)
    received = np.sqrt(sum(float(jnp.sum((m / 0.1) ** 2)) for m in jax.tree.leaves(mu)))
    assert received == pytest.approx(1.0, rel=1e-6)


def test_gradients_below_the_threshold_and_clip_zero_are_untouched():
    grads = {"w": jnp.array([3.0, 4.0]), "norm": jnp.array([12.0])}
    for clip in (20.0, 0.0):
        mu = _first_adam_moments(grads, clip=clip)
        np.testing.assert_allclose(mu["w"], 0.1 * np.array([3.0, 4.0]), rtol=1e-6)


def test_flops_per_token_against_a_hand_count_for_llama_3_1_8b():
    c = load_config(FIXTURES / "llama-3.1-8b.json")
    L, h, i, nh, kv, d, V, T = 32, 4096, 14336, 32, 8, 128, 128256, 4096
    assert (c.num_layers, c.hidden_size, c.intermediate_size, c.num_heads, c.num_kv_heads,
            c.head_dim, c.vocab_size) == (L, h, i, nh, kv, d, V)
    # Forward multiply-adds per token: q, k, v, o projections; gate, up, down; the LM head
    # (the embedding lookup is free); attention QK^T and PV over T keys, per layer.
    projections = L * (h * nh * d + 2 * h * kv * d + nh * d * h + 3 * h * i) + h * V
    attention = L * 2 * nh * d * T
    hand = 3 * 2 * (projections + attention)  # 2 FLOPs per multiply-add; backward = 2x forward
    # The formula also counts the RMSNorm gains as matmul weights: (2L + 1) * h parameters.
    assert c.flops_per_token(T) == pytest.approx(hand + 6 * (2 * L + 1) * h, rel=1e-12)
    assert c.flops_per_token(T) == pytest.approx(hand, rel=1e-4)
    assert hand == pytest.approx(5.147e10, rel=1e-3)  # 51.5 GFLOPs per trained token at 4k context


def test_mfu_of_a_hand_counted_step():
    c = load_config(FIXTURES / "llama-3.1-8b.json")
    flops = c.flops_per_token(4096)
    # 8 H100s at 2,000 tokens/s each: 16k tokens/s against 8 x 989 TFLOP/s.
    assert mfu(flops, 16_000.0, 8, "NVIDIA H100 80GB HBM3") == pytest.approx(
        flops * 16_000 / (8 * 989e12), rel=1e-12)
    assert mfu(flops, 16_000.0, 8, "NVIDIA H100 80GB HBM3") == pytest.approx(0.1041, abs=1e-4)
