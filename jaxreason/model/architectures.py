"""Architectures of real released models, as the fields of their Hugging Face `config.json`.

They let a recipe be built and planned without its checkpoint (`--config.model.preset=
llama-3.1-70b --dry_run`): shapes, parameter counts, shardings and memory are functions of
the architecture alone. Each entry is read by the same `config_from_hf_dict` a checkpoint's
`config.json` goes through, so a preset can never mean something a real file would not.

Values are copied from the models' published `config.json` (the Instruct variants where the
recipes use them: their EOS is the end-of-turn token). Random weights come with a preset
(`init_params`); training from the real weights still needs `model.path`.
"""

from __future__ import annotations

from typing import Any

_LLAMA3_ROPE_8K = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                   "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
_LLAMA32_ROPE = {**_LLAMA3_ROPE_8K, "factor": 32.0}


def _llama31(hidden: int, intermediate: int, layers: int, heads: int) -> dict[str, Any]:
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 128256,
            "hidden_size": hidden, "intermediate_size": intermediate,
            "num_hidden_layers": layers, "num_attention_heads": heads,
            "num_key_value_heads": 8, "head_dim": 128, "hidden_act": "silu",
            "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "rope_scaling": _LLAMA3_ROPE_8K,
            "max_position_embeddings": 131072, "tie_word_embeddings": False,
            "attention_bias": False, "mlp_bias": False, "bos_token_id": 128000,
            "eos_token_id": [128001, 128008, 128009]}


def _qwen25(vocab: int, hidden: int, intermediate: int, layers: int, heads: int, kv_heads: int,
            tied: bool) -> dict[str, Any]:
    return {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": vocab,
            "hidden_size": hidden, "intermediate_size": intermediate,
            "num_hidden_layers": layers, "num_attention_heads": heads,
            "num_key_value_heads": kv_heads, "hidden_act": "silu", "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0, "max_position_embeddings": 32768,
            "tie_word_embeddings": tied, "use_sliding_window": False,
            "bos_token_id": 151643, "eos_token_id": 151645}


ARCHITECTURES: dict[str, dict[str, Any]] = {
    "llama-3.1-8b": _llama31(4096, 14336, 32, 32),
    "llama-3.1-70b": _llama31(8192, 28672, 80, 64),
    "llama-3.2-1b": {**_llama31(2048, 8192, 16, 32), "head_dim": 64,
                     "rope_scaling": _LLAMA32_ROPE, "tie_word_embeddings": True},
    "llama-3.2-3b": {**_llama31(3072, 8192, 28, 24), "rope_scaling": _LLAMA32_ROPE,
                     "tie_word_embeddings": True},
    # Llama-2-70B(-chat): the Iterative RPO paper's model
    "llama-2-70b": {**_llama31(8192, 28672, 80, 64), "vocab_size": 32000, "rope_theta": 10000.0,
                    "rope_scaling": None, "max_position_embeddings": 4096, "bos_token_id": 1,
                    "eos_token_id": 2},
    "qwen2.5-1.5b": _qwen25(151936, 1536, 8960, 28, 12, 2, tied=True),
    "qwen2.5-7b": _qwen25(152064, 3584, 18944, 28, 28, 4, tied=False),
    "qwen2.5-32b": _qwen25(152064, 5120, 27648, 64, 40, 8, tied=False),
}
