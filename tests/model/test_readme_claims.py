"""README model claims: `linear` RoPE scaling against transformers, remat policies give the
same gradients as none, and export gathers one layer of one tensor at a time."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxreason
from jaxreason import parallel
from jaxreason.model import llama, preset_config

from hf_oracle import hf_logits, hf_model, padded_batch


def test_linear_rope_scaling_matches_transformers(tmp_path):
    rope = {"rope_type": "linear", "factor": 4.0}
    hf = hf_model("llama", rope_scaling=rope)
    hf.save_pretrained(tmp_path)
    model = jaxreason.load_pretrained(tmp_path)
    assert model.config.rope_scaling.rope_type == "linear" and model.config.rope_scaling.factor == 4.0
    ids, mask = padded_batch(length=64)
    expected = hf_logits(hf, ids, mask)
    got = np.asarray(model(ids, attention_mask=mask))
    real = mask.astype(bool)
    assert np.abs(got - expected)[real].max() < 1e-4
    # The factor matters at these positions: unscaled RoPE is far off.
    unscaled = hf_model("llama")
    assert np.abs(hf_logits(unscaled, ids, mask) - expected)[real].max() > 2e-3


@pytest.mark.parametrize("policy, scan", [("full", False), ("dots", False), ("dots_no_batch", False),
                                          ("dots_no_batch", True)])
def test_remat_policies_give_the_gradients_of_no_remat(policy, scan):
    base = preset_config("llama-tiny", vocab_size=64, scan_layers=scan)
    params = llama.init_params(base, jax.random.key(0), std=0.2)
    ids = jax.random.randint(jax.random.key(1), (2, 16), 0, 64)

    def loss(params, config):
        logits = llama.forward(params, config, ids)[0]
        return jnp.mean(jax.nn.log_softmax(logits)[..., 0] * jnp.arange(16))

    grad = jax.jit(jax.grad(loss), static_argnums=1)
    reference = grad(params, base)
    config = base.replace(remat_policy=policy)
    grads = grad(params, config)
    for a, b in zip(jax.tree.leaves(reference), jax.tree.leaves(grads)):
        # Recomputation is the same arithmetic; XLA may fuse it differently (float32 rounding).
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4,
                                   atol=1e-5 * float(jnp.abs(a).max()))
    assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads)) > 1e-3  # not all zero
    # The policy is really applied: the traced gradient holds a checkpoint (remat) region.
    text = str(jax.make_jaxpr(jax.grad(loss), static_argnums=1)(params, config))
    assert "remat" in text or "checkpoint" in text


def test_export_gathers_one_layer_of_one_tensor_at_a_time(tmp_path, monkeypatch):
    """Every array brought to the host during export is at most the largest single HF tensor
    (one layer's matrix or the embedding), never a stacked [layers, ...] parameter."""
    config = preset_config("llama-small", vocab_size=64, tie_word_embeddings=False)
    model = jaxreason.create_model(config, mesh=parallel.make_mesh(data=1, fsdp=-1, tensor=1))
    gathered = []
    to_host = parallel.to_host

    def spy(tree):
        host = to_host(tree)
        gathered.extend(np.asarray(x).size for x in jax.tree.leaves(host))
        return host

    monkeypatch.setattr(parallel, "to_host", spy)
    jaxreason.save_pretrained(model, tmp_path)
    shapes = llama.param_shapes(config)
    largest_tensor = max(
        [int(np.prod(s[1:])) for s in shapes["layers"].values()]
        + [int(np.prod(s)) for k, s in shapes.items() if k != "layers"])
    largest_stack = max(int(np.prod(s)) for s in shapes["layers"].values())
    tensors = len(shapes) - 1 + config.num_layers * len(shapes["layers"])
    assert len(gathered) == tensors  # one gather per HF tensor
    assert max(gathered) <= largest_tensor < largest_stack
