"""Forward tokens/s: jaxreason vs `transformers` (PyTorch) on the same tiny random Llama.

Usage: python bench/forward.py [--batch 8] [--seq 256] [--threads N]
Both run in float32 on the CPU with the same weights (the jaxreason model is loaded from the
checkpoint `transformers` saved). Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))

import jax  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import jaxreason  # noqa: E402
from common import emit_json, print_table, save_hf_model, time_call  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        hf = save_hf_model(tmp)
        model = jaxreason.load_pretrained(tmp)
    torch.set_grad_enabled(False)
    rows, figures = [], {"device": jax.devices()[0].device_kind}
    default_threads = torch.get_num_threads()
    for batch in args.batch:
        ids = np.random.RandomState(0).randint(0, model.config.vocab_size, (batch, args.seq))
        ours = time_call(lambda: model(ids).block_until_ready(), repeats=args.repeats)
        ids_t = torch.tensor(ids)
        theirs, threads = float("inf"), 0
        for n in sorted({1, default_threads}):  # 2 torch threads beside a busy core
            torch.set_num_threads(n)                     # can be far slower than 1: take the best
            t = time_call(lambda: hf(ids_t).logits, repeats=args.repeats)
            if t < theirs:
                theirs, threads = t, n
        torch.set_num_threads(max(threads, 1))
        figures[f"b{batch}_torch_threads"] = threads
        tokens = batch * args.seq
        rows.append([batch, args.seq, tokens / ours, tokens / theirs, theirs / ours])
        figures[f"b{batch}_jaxreason_tok_s"] = round(tokens / ours, 1)
        figures[f"b{batch}_transformers_tok_s"] = round(tokens / theirs, 1)
        figures[f"b{batch}_ratio"] = round(theirs / ours, 3)
    print_table(f"forward, {model.config.num_params / 1e6:.1f}M-param Llama, float32, "
                f"{jax.devices()[0].platform}",
                ["batch", "seq", "jaxreason tok/s", "transformers tok/s", "ratio"], rows)
    emit_json(figures)


if __name__ == "__main__":
    main()
