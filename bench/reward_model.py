"""Solutions scored per second by a reward model: jaxreason's `RewardModelScorer` (the one
scoring function of best-of-N, step beam search and GRPO rewards) vs `transformers`'
`LlamaForTokenClassification` on the same checkpoint, and the scorer fed one solution per call
(what a per-item scorer of beam search costs) vs batched.

The checkpoint is a random ~7M-parameter Llama with a scalar head (`bench/common.BENCH_SHAPE`,
`num_labels = 1`) saved by `transformers`; solutions are a 64-token prompt and 4 steps of 16
tokens each (space-separated numbers that are one token each, steps ending in a newline);
every step's score is read (a process reward model). Both sides run float32 on the CPU on the
same token ids; `transformers` gets right-padded batches of the same size as ours with an
attention mask. Figures are medians after a warm-up call (compilation on our side).

Usage: python bench/reward_model.py [--solutions 256] [--batch 64] [--torch-threads 2]
Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import BENCH_SHAPE, emit_json, print_table, time_call  # noqa: E402

PROMPT_TOKENS, STEPS, STEP_TOKENS = 64, 4, 16


def build_checkpoint(directory: str) -> None:
    """A random Llama token classifier (1 label), a BPE tokenizer and reward_model.json."""
    import torch
    import transformers

    from jaxreason.tokenizer import train_bpe_tokenizer

    torch.manual_seed(0)
    config = transformers.LlamaConfig(**BENCH_SHAPE, num_labels=1)
    transformers.LlamaForTokenClassification(config).eval().save_pretrained(directory)
    words = [" ".join(str(i) for i in range(j, j + 50)) for j in range(0, 1000, 50)]
    tokenizer = train_bpe_tokenizer(words * 20 + ["\n"] * 50, 1024)
    tokenizer.save_pretrained(directory)
    with open(os.path.join(directory, "reward_model.json"), "w") as f:
        json.dump({"kind": "prm", "aggregation": "last", "delimiters": ["\n"], "chat": False,
                   "add_bos": False, "max_length": 512}, f)


def make_solutions(tokenizer, count: int, seed: int = 0) -> tuple[list[list[int]], list[list[str]]]:
    words = [f" {i}" for i in range(1000)
             if len(tokenizer.encode(f" {i}", add_special_tokens=False)) == 1]
    rng = random.Random(seed)
    prompts = [tokenizer.encode("".join(rng.choice(words) for _ in range(PROMPT_TOKENS)),
                                add_special_tokens=False) for _ in range(count)]
    steps = [["".join(rng.choice(words) for _ in range(STEP_TOKENS - 1)) + "\n"
              for _ in range(STEPS)] for _ in range(count)]
    return prompts, steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--solutions", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--torch-threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import numpy as np
    import torch
    import transformers

    from jaxreason.data.reward_data import scored_tokens
    from jaxreason.evaluation.reward_scoring import RewardModelScorer

    torch.set_num_threads(args.torch_threads)
    with tempfile.TemporaryDirectory() as directory:
        build_checkpoint(directory)
        scorer = RewardModelScorer(directory, batch_rows=args.batch)
        prompts, steps = make_solutions(scorer.tokenizer, args.solutions)
        ours = time_call(lambda: scorer.step_scores(prompts, steps), repeats=args.repeats)
        few = max(8, args.solutions // 16)
        one_at_a_time = time_call(lambda: [scorer.step_scores([p], [s]) for p, s in
                                           zip(prompts[:few], steps[:few])],
                                  repeats=args.repeats) * args.solutions / few
        peer = transformers.LlamaForTokenClassification.from_pretrained(directory).eval()
        encoded = [scored_tokens(p, s, scorer.tokenizer) for p, s in zip(prompts, steps)]

        def peer_scores() -> list[np.ndarray]:
            out = []
            with torch.no_grad():
                for start in range(0, len(encoded), args.batch):
                    chunk = encoded[start:start + args.batch]
                    width = max(len(t) for t, _ in chunk)
                    ids = torch.zeros((args.batch, width), dtype=torch.long)
                    mask = torch.zeros((args.batch, width), dtype=torch.long)
                    for r, (tokens, _) in enumerate(chunk):
                        ids[r, :len(tokens)] = torch.tensor(tokens)
                        mask[r, :len(tokens)] = 1
                    logits = peer(input_ids=ids, attention_mask=mask).logits[..., 0].numpy()
                    out.extend(1 / (1 + np.exp(-logits[r, ends])) for r, (_, ends) in
                               enumerate(chunk))
            return out

        theirs = time_call(peer_scores, repeats=args.repeats)
        gap = max(float(np.max(np.abs(a - b))) for a, b in
                  zip(scorer.step_scores(prompts, steps), peer_scores()))
    tokens = PROMPT_TOKENS + STEPS * STEP_TOKENS
    rows = [["jaxreason RewardModelScorer (batched)", args.solutions / ours, 1.0],
            ["transformers LlamaForTokenClassification", args.solutions / theirs,
             ours / theirs],
            ["jaxreason, one solution per call", args.solutions / one_at_a_time,
             ours / one_at_a_time]]
    print_table(f"{args.solutions} solutions of {tokens} tokens, {STEPS} scored steps each, "
                f"batches of {args.batch} (max |score difference| {gap:.2e})",
                ["scorer", "solutions/s", "vs batched jaxreason"], rows)
    emit_json({"bench": "reward_model", "solutions": args.solutions, "batch": args.batch,
               "tokens_per_solution": tokens, "jaxreason_solutions_per_s": args.solutions / ours,
               "transformers_solutions_per_s": args.solutions / theirs,
               "one_per_call_solutions_per_s": args.solutions / one_at_a_time,
               "speedup_vs_transformers": theirs / ours,
               "speedup_vs_one_per_call": one_at_a_time / ours, "max_abs_score_diff": gap,
               "torch_threads": args.torch_threads})


if __name__ == "__main__":
    main()
