"""The scalar head (`model/value_head.py`) against `transformers`' *ForTokenClassification."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

from jaxreason import parallel
from jaxreason.model import hf_checkpoint, llama, value_head
from jaxreason.model.config import load_config
from tests.model.hf_oracle import hf_model, padded_batch

COMMON = dict(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5,
              max_position_embeddings=256, num_labels=1)


def hf_value_model(kind: str, seed: int = 0) -> transformers.PreTrainedModel:
    torch.manual_seed(seed)
    if kind == "llama":
        model = transformers.LlamaForTokenClassification(transformers.LlamaConfig(**COMMON))
    else:
        model = transformers.Qwen2ForTokenClassification(transformers.Qwen2Config(**COMMON))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or "bias" in name:
                p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def hf_values(model: transformers.PreTrainedModel, ids: np.ndarray, mask: np.ndarray
              ) -> np.ndarray:
    with torch.no_grad():
        return model(torch.tensor(ids), attention_mask=torch.tensor(mask)).logits[..., 0].numpy()


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
def test_values_match_transformers_token_classification(kind, tmp_path):
    model = hf_value_model(kind)
    model.save_pretrained(tmp_path)
    config = load_config(tmp_path, dtype="float32")
    assert value_head.is_value_model(tmp_path)
    params = value_head.load_pretrained(tmp_path, config)
    ids, mask = padded_batch(left=False)
    ours = np.asarray(value_head.values(params, config, jnp.asarray(ids), None,
                                        jnp.asarray(mask)))
    assert ours.shape == ids.shape and ours.dtype == np.float32
    real = mask > 0
    np.testing.assert_allclose(ours[real], hf_values(model, ids, mask)[real], atol=2e-5,
                               rtol=1e-4)


def test_export_loads_in_transformers_with_the_same_values(tmp_path):
    config = load_config(_save_causal(tmp_path / "policy"), dtype="float32")
    params = value_head.init_params(config, jax.random.key(3), head_std=0.5)
    value_head.save_pretrained(tmp_path / "value", config, params)
    loaded = transformers.AutoModelForTokenClassification.from_pretrained(tmp_path / "value")
    ids, mask = padded_batch(seed=1, left=False)
    ours = np.asarray(value_head.values(params, config, jnp.asarray(ids), None,
                                        jnp.asarray(mask)))
    real = mask > 0
    np.testing.assert_allclose(ours[real], hf_values(loaded.eval(), ids, mask)[real], atol=2e-5,
                               rtol=1e-4)
    back = value_head.load_pretrained(tmp_path / "value", config)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(back)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _save_causal(directory) -> str:
    hf_model("llama").save_pretrained(directory)
    return str(directory)


def test_from_a_policy_directory_copies_the_transformer_under_a_fresh_head(tmp_path):
    path = _save_causal(tmp_path)
    config = load_config(path, dtype="float32")
    policy = hf_checkpoint.load_params(path, config)
    params = value_head.load_pretrained(path, config)
    assert "lm_head" not in params["backbone"]
    for key in ("embed", "final_norm"):
        np.testing.assert_array_equal(np.asarray(params["backbone"][key]),
                                      np.asarray(policy[key]))
    np.testing.assert_array_equal(np.asarray(params["head"]["kernel"]), 0.0)
    ids, mask = padded_batch(left=False)
    zero = value_head.values(params, config, jnp.asarray(ids), None, jnp.asarray(mask))
    np.testing.assert_array_equal(np.asarray(zero), 0.0)
    # from_policy == hidden states of the policy's own forward, dotted with the head
    fresh = value_head.from_policy(policy, config, jax.random.key(0), head_std=0.1)
    hidden, _ = llama.forward(policy, config, jnp.asarray(ids), None, jnp.asarray(mask),
                              return_hidden=True)
    expected = np.asarray(hidden) @ np.asarray(fresh["head"]["kernel"])
    got = value_head.values(fresh, config, jnp.asarray(ids), None, jnp.asarray(mask))
    np.testing.assert_allclose(np.asarray(got), expected, atol=1e-5)


def test_sharded_values_equal_one_device(tmp_path):
    config = load_config(_save_causal(tmp_path), dtype="float32")
    params = value_head.init_params(config, jax.random.key(1), head_std=0.3)
    ids, mask = padded_batch(seed=2, left=False)
    ids, mask = np.concatenate([ids, ids[::-1]]), np.concatenate([mask, mask[::-1]])
    single = value_head.values(params, config, jnp.asarray(ids), None, jnp.asarray(mask))
    mesh = parallel.make_mesh(data=2, fsdp=2, tensor=2)
    shardings = value_head.param_shardings(config, mesh)
    assert shardings["head"]["kernel"].spec[0] == "fsdp"
    sharded_params = jax.device_put(params, shardings)
    with jax.set_mesh(mesh):
        sharded = jax.jit(lambda p, i, m: value_head.values(p, config, i, None, m))(
            sharded_params, jnp.asarray(ids), jnp.asarray(mask))
    np.testing.assert_allclose(np.asarray(sharded), np.asarray(single), atol=1e-5)
