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


def quiet_run_config(trainer: str, model_dir: str, tokenizer_dir: str, data: str, steps: int):
    """The base config of a bench run of `trainer` on a saved model and a data file: constant
    learning rate 1e-5, no checkpoints, export, progress bar or TensorBoard (nothing but the
    steps is timed). The caller sets the method's own section."""
    from configs import base

    c = base.get_config()
    c.trainer = trainer
    c.model.path = model_dir
    c.tokenizer.path = tokenizer_dir
    c.data.train = data
    c.data.shuffle = False  # records in file order, like the peer's side
    c.data.add_bos = False  # the peer feeds the raw prompt text (the bench tokenizer adds none)
    c.train.num_steps = steps
    c.optim.learning_rate = 1e-5
    c.optim.schedule = "constant"
    c.checkpoint.every = 0
    c.checkpoint.async_save = False
    c.checkpoint.export_hf = False
    c.log.progress = False
    c.log.tensorboard = False
    return c


def timed_train_records(config, workdir: str) -> list[dict[str, Any]]:
    """Run `config` in `<workdir>/run` through the one lifecycle and return the metrics records
    of its train steps from step 3 on: a step's `step_time` is measured from the previous
    step's dispatch, so steps 1-2 hold compilation."""
    from jaxreason.train import run

    run_dir = os.path.join(workdir, "run")
    run.run(config, run_dir, config.trainer)
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    return [r for r in records if r["kind"] == "train" and r["step"] >= 3 and "step_time" in r]


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
