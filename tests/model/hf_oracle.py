"""Tiny random `transformers` models (the numerics oracle) saved as HF checkpoint directories."""

from __future__ import annotations

import pathlib

import numpy as np
import torch
import transformers

VOCAB = 128

LLAMA3_ROPE = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": 32}

VARIANTS = {
    "llama_untied": ("llama", {}),
    "llama3_rope_tied": ("llama", {"rope_scaling": LLAMA3_ROPE, "tie_word_embeddings": True}),
    "qwen2_bias_untied": ("qwen2", {}),
    "qwen2_bias_tied": ("qwen2", {"tie_word_embeddings": True}),
}


def hf_model(kind: str, seed: int = 0, **overrides) -> transformers.PreTrainedModel:
    """A random tiny model; norms and biases are perturbed so that they matter."""
    torch.manual_seed(seed)
    common = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5,
                  max_position_embeddings=256)
    common.update(overrides)
    if kind == "llama":
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**common))
    else:
        model = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**common))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or "bias" in name:
                p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def save_variant(variant: str, directory: pathlib.Path, **save_kwargs) -> transformers.PreTrainedModel:
    kind, overrides = VARIANTS[variant]
    model = hf_model(kind, **overrides)
    model.save_pretrained(directory, **save_kwargs)
    return model


def hf_logits(model: transformers.PreTrainedModel, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.tensor(ids), attention_mask=torch.tensor(mask)).logits.numpy()


def padded_batch(seed: int = 0, length: int = 24, left: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Ids and mask of 4 rows with real lengths 24, 17, 9, 1 (left or right padded)."""
    rng = np.random.RandomState(seed)
    ids = rng.randint(0, VOCAB, (4, length))
    mask = np.zeros((4, length), np.int64)
    for row, n in enumerate([length, 17, 9, 1]):
        if left:
            mask[row, length - n:] = 1
        else:
            mask[row, :n] = 1
    return ids, mask
