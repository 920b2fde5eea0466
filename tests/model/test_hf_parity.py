"""Numerics against `transformers` (PyTorch CPU), the oracle: logits, export, round trips."""

import jax
import numpy as np
import pytest
import transformers

import jaxreason
from jaxreason.model import llama
from hf_oracle import VARIANTS, hf_logits, padded_batch, save_variant


@pytest.mark.parametrize("left", [True, False], ids=["left_pad", "right_pad"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_logits_match_transformers_on_padded_batch(tmp_path, variant, left):
    hf = save_variant(variant, tmp_path)
    ids, mask = padded_batch(left=left)
    expected = hf_logits(hf, ids, mask)
    model = jaxreason.load_pretrained(tmp_path)
    got = np.asarray(model(ids, attention_mask=mask))
    real = mask.astype(bool)
    assert got.shape == expected.shape
    assert np.abs(got - expected)[real].max() < 1e-4


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_exported_checkpoint_loads_in_transformers_with_same_logits(tmp_path, variant):
    hf = save_variant(variant, tmp_path / "hf")
    model = jaxreason.load_pretrained(tmp_path / "hf")
    jaxreason.save_pretrained(model, tmp_path / "export")
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "export").eval()
    assert type(reloaded) is type(hf)
    ids, mask = padded_batch(seed=1)
    real = mask.astype(bool)
    np.testing.assert_allclose(hf_logits(reloaded, ids, mask)[real],
                               hf_logits(hf, ids, mask)[real], atol=1e-6)
    ours = np.asarray(model(ids, attention_mask=mask))
    assert np.abs(ours - hf_logits(reloaded, ids, mask))[real].max() < 1e-4


def test_sharded_checkpoint_with_index_round_trips(tmp_path):
    hf = save_variant("llama_untied", tmp_path / "hf", max_shard_size="40KB")
    assert (tmp_path / "hf" / "model.safetensors.index.json").exists()
    model = jaxreason.load_pretrained(tmp_path / "hf")
    jaxreason.save_pretrained(model, tmp_path / "export", max_shard_size="30KB")
    files = sorted(p.name for p in (tmp_path / "export").glob("*.safetensors"))
    assert len(files) > 1 and (tmp_path / "export" / "model.safetensors.index.json").exists()
    again = jaxreason.load_pretrained(tmp_path / "export")
    ids, mask = padded_batch()
    np.testing.assert_array_equal(np.asarray(again(ids, attention_mask=mask)),
                                  np.asarray(model(ids, attention_mask=mask)))
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "export").eval()
    real = mask.astype(bool)
    np.testing.assert_allclose(hf_logits(reloaded, ids, mask)[real],
                               hf_logits(hf, ids, mask)[real], atol=1e-6)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_checkpoints_load_and_export_in_their_dtype(tmp_path, dtype):
    import torch
    hf = save_variant("qwen2_bias_untied", tmp_path / "hf")
    hf.to(getattr(torch, dtype)).save_pretrained(tmp_path / "half")
    model = jaxreason.load_pretrained(tmp_path / "half", dtype=dtype)
    assert model.config.param_dtype == dtype
    assert all(str(x.dtype) == dtype for x in __import__("jax").tree.leaves(model.params))
    jaxreason.save_pretrained(model, tmp_path / "export")
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "export")
    for (name, a), (_, b) in zip(hf.named_parameters(), reloaded.named_parameters()):
        assert b.dtype == getattr(torch, dtype), name
        assert torch.equal(a.to(b.dtype), b), name


def _peaky_attention_variant(directory):
    """llama3_rope_tied with q and k weights x4: attention scores of a few units, so attention
    is peaked and positions matter (with the plain tiny model, removing RoPE moves the bf16
    logits by only 6e-3, within bf16 noise)."""
    import torch
    from hf_oracle import LLAMA3_ROPE, hf_model
    hf = hf_model("llama", rope_scaling=LLAMA3_ROPE, tie_word_embeddings=True)
    with torch.no_grad():
        for layer in hf.model.layers:
            layer.self_attn.q_proj.weight.mul_(4.0)
            layer.self_attn.k_proj.weight.mul_(4.0)
    hf.save_pretrained(directory)
    return hf


# Measured (CPU): max |bf16 - fp32| 4.5e-3 (mean 7.3e-4) on the plain variant; 4.8e-3 (mean
# 7.5e-4) on the peaked variant, where the same model without RoPE is 9.3e-2 (mean 1.2e-2) off.
BF16_MAX_ERROR = 8e-3
BF16_MEAN_ERROR = 1.2e-3


def _bf16_errors(directory, ids, mask, expected):
    model = jaxreason.load_pretrained(directory, dtype="bfloat16", param_dtype="float32")
    assert model.config.param_dtype == "float32" and model.config.dtype == "bfloat16"
    config = model.config
    # A fresh jit each time, so a monkeypatched building block is traced, not a cached program.
    forward = jax.jit(lambda params, ids, mask: llama.forward(params, config, ids,
                                                              attention_mask=mask)[0])
    got = np.asarray(forward(model.params, ids, mask))
    assert got.dtype == np.float32
    error = np.abs(got - expected)[mask.astype(bool)]
    return float(error.max()), float(error.mean()), got


@pytest.mark.parametrize("variant", ["llama3_rope_tied", "peaky_attention"])
def test_bf16_compute_with_fp32_params_is_close_to_fp32(tmp_path, variant):
    if variant == "peaky_attention":
        hf = _peaky_attention_variant(tmp_path)
    else:
        hf = save_variant(variant, tmp_path)
    ids, mask = padded_batch(length=64)
    expected = hf_logits(hf, ids, mask)
    max_error, mean_error, got = _bf16_errors(tmp_path, ids, mask, expected)
    print(f"{variant}: bf16 max error {max_error:.2e}, mean {mean_error:.2e}")
    assert max_error < BF16_MAX_ERROR and mean_error < BF16_MEAN_ERROR
    real = mask.astype(bool)
    assert np.mean(got[real].argmax(-1) == expected[real].argmax(-1)) > 0.9


def test_bf16_check_fails_a_model_without_rope(tmp_path, monkeypatch):
    """Positive control: the tolerances above are tight enough to catch RoPE left out."""
    hf = _peaky_attention_variant(tmp_path)
    ids, mask = padded_batch(length=64)
    expected = hf_logits(hf, ids, mask)
    monkeypatch.setattr(llama, "apply_rope", lambda x, rope: x)
    max_error, mean_error, _ = _bf16_errors(tmp_path, ids, mask, expected)
    print(f"without RoPE: bf16 max error {max_error:.2e}, mean {mean_error:.2e}")
    assert max_error > 3 * BF16_MAX_ERROR and mean_error > 3 * BF16_MEAN_ERROR


def test_long_padded_batch_uses_blockwise_attention_and_matches(tmp_path):
    """Sequences longer than one query block (64) take the blockwise causal path."""
    hf = save_variant("qwen2_bias_untied", tmp_path)
    ids, mask = padded_batch(length=200, left=True)
    mask[1, :150] = 0  # one row mostly padding
    expected = hf_logits(hf, ids, mask)
    got = np.asarray(jaxreason.load_pretrained(tmp_path)(ids, attention_mask=mask))
    real = mask.astype(bool)
    assert np.abs(got - expected)[real].max() < 1e-4
