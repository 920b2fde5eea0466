"""Shared helpers of the bench scripts: timing, the tiny peer model, tables and the JSON line."""

from __future__ import annotations

import json
import os
import pathlib
import statistics
import time
from typing import Any, Callable

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "hf_configs"

# The shape both frameworks run in the CPU benchmarks (~7M parameters).
BENCH_SHAPE = dict(vocab_size=2048, hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                   num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=4096,
                   rms_norm_eps=1e-5, tie_word_embeddings=False)


def time_call(fn: Callable[[], Any], *, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of `fn()` in seconds (fn must block until its result is ready)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def save_hf_model(directory: str | os.PathLike, shape: dict | None = None, seed: int = 0,
                  kind: str = "llama"):
    """A random `transformers` model of `shape`, saved to `directory`; returns it (eval mode)."""
    import torch
    import transformers

    torch.manual_seed(seed)
    shape = dict(shape or BENCH_SHAPE)
    if kind == "llama":
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**shape))
    else:
        model = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**shape))
    model.eval().save_pretrained(directory)
    return model


def print_table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    cells = [[str(c) for c in header]] + [[f"{c:.4g}" if isinstance(c, float) else str(c)
                                           for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def emit_json(figures: dict[str, Any]) -> None:
    """The last line of every bench script: one JSON object of its figures."""
    print(json.dumps(figures, sort_keys=True))
