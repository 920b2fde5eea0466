"""Shared builders for the sampler tests: a tiny BPE tokenizer whose merges cross "\\n\\n",
and tiny random `transformers` models (the numerics oracle) loaded into jaxreason."""

from __future__ import annotations

import functools
import pathlib
import random

import numpy as np

WORDS = ("the", "answer", "is", "step", "we", "add", "so", "then", "check", "it", "works",
         "first", "next", "number", "total", "equals", "wait", "try", "again", "yes")


SEPARATORS = ("\n", "\n\n", ".\n\n", "\n\n\n", ":\n", "\n\nSo ", "\n\nThen ", ".\n", " 12.\n\n",
              "\n- ")


@functools.lru_cache(maxsize=None)
def corpus() -> tuple[str, ...]:
    """Short "solutions" whose steps end in blank lines and other newline runs, so that BPE
    merges "\n\n" with its neighbours (".\n\n", "\n\n\n", "\n\nSo", ...)."""
    rng = random.Random(0)
    texts = []
    for _ in range(600):
        parts = []
        for _ in range(rng.randint(3, 7)):
            parts.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4))))
            parts.append(rng.choice(SEPARATORS))
        texts.append("".join(parts))
    return tuple(texts)


@functools.lru_cache(maxsize=None)
def tiny_tokenizer(vocab_size: int = 512):
    """Byte-level BPE whose merges cross whitespace (".\n\n" and "\n\nSo" become tokens)."""
    from jaxreason.tokenizer import train_bpe_tokenizer

    return train_bpe_tokenizer(corpus(), vocab_size, split_pattern=None)


def hf_model(kind: str, vocab_size: int, seed: int = 0, **overrides):
    """A random tiny `transformers` model; norms and biases perturbed so they matter."""
    import torch
    import transformers

    # One torch thread: on a 2-core machine shared with JAX's thread pool, OpenMP barriers
    # with 2 threads can slow transformers down 50x.
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    shape = dict(vocab_size=vocab_size, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5,
                 max_position_embeddings=512, tie_word_embeddings=False)
    shape.update(overrides)
    cls, config = ((transformers.LlamaForCausalLM, transformers.LlamaConfig) if kind == "llama"
                   else (transformers.Qwen2ForCausalLM, transformers.Qwen2Config))
    model = cls(config(**shape))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or "bias" in name:
                p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def saved_pair(kind: str, directory: pathlib.Path, vocab_size: int, seed: int = 0, **overrides):
    """(transformers model, the same model loaded by jaxreason)."""
    import jaxreason

    hf = hf_model(kind, vocab_size, seed, **overrides)
    hf.save_pretrained(directory)
    return hf, jaxreason.load_pretrained(directory)


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def nucleus(logits: np.ndarray, temperature: float, top_k: int, top_p: float) -> np.ndarray:
    """Boolean mask `[vocab]` of the tokens that temperature, then top-k, then top-p (on the
    renormalized top-k distribution) keep; ties with the last kept logit are kept."""
    scaled = logits / temperature
    ordered = np.sort(scaled)[::-1]
    k = top_k if 0 < top_k <= scaled.size else scaled.size
    probs = np.exp(log_softmax(ordered[:k]))
    mass_before = np.cumsum(probs) - probs
    kept = int((mass_before < top_p).sum())
    return scaled >= ordered[kept - 1]


def spread_model(preset: str, vocab_size: int, seed: int = 0, logit_scale: float = 12.0,
                 **overrides):
    """A random jaxreason model whose next-token distributions are neither flat nor one-hot
    (its untied output projection is scaled up), so sampling tests can tell them apart."""
    from jaxreason.model import Model, create_model, preset_config

    model = create_model(preset_config(preset, vocab_size=vocab_size, tie_word_embeddings=False,
                                       **overrides), seed=seed)
    params = dict(model.params, lm_head=model.params["lm_head"] * logit_scale)
    return Model(model.config, params, model.mesh, model.rules)


def markov_model(vocab_size: int, successor: dict[int, int], seed: int = 0):
    """A jaxreason model whose greedy next token depends only on the current one:
    `successor[t]` after t. Every layer's output projection is zero, so the residual stream is
    the token's embedding, and the output projection maps each embedding onto its successor.
    Lets a test spell out exactly which tokens get generated."""
    import jax.numpy as jnp

    from jaxreason.model import Model, create_model, preset_config

    model = create_model(preset_config("llama-tiny", vocab_size=vocab_size,
                                       tie_word_embeddings=False), seed=seed)
    hidden = model.config.hidden_size
    rng = np.random.RandomState(seed)
    embed = rng.randn(vocab_size, hidden).astype(np.float32)
    embed /= np.sqrt((embed ** 2).mean(axis=1, keepdims=True))  # RMS 1: the final norm is a no-op
    head = np.zeros((hidden, vocab_size), np.float32)
    for token, following in successor.items():
        head[:, following] += embed[token] / np.sqrt(hidden)  # logit sqrt(hidden) vs ~N(0, 1)
    layers = dict(model.params["layers"], o=jnp.zeros_like(model.params["layers"]["o"]),
                  down=jnp.zeros_like(model.params["layers"]["down"]))
    params = dict(model.params, embed=jnp.asarray(embed), lm_head=jnp.asarray(head),
                  layers=layers)
    return Model(model.config, params, model.mesh, model.rules)
