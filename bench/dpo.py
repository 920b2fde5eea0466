"""Pairs per second of a DPO step: jaxreason's `dpo` trainer vs TRL's `DPOTrainer`.

Both train the same tiny random Llama (saved once by `transformers`, ~4M parameters) with the
same byte-level BPE tokenizer on the same pairs: 16 pairs per step, each a 64-token prompt and
two 64-token responses (space-separated numbers, each one token, so both sides tokenize them
the same; plus EOS), sigmoid DPO with beta 0.1, float32 on the CPU, one AdamW update per step,
reference log-probs computed once before training on both sides (TRL:
`precompute_ref_log_probs=True`). jaxreason puts one pair per row (chosen and rejected side
by side, `data.packing=False`); TRL batches the 16 chosen and 16 rejected sequences. The first
steps (compilation on our side, warm-up on TRL's) are excluded; figures are medians.
TRL's side is `bench/trl_dpo_peer.py`.

Usage: python bench/dpo.py [--steps 8] [--torch-threads N]
Prints a table and, last, one JSON line. Needs `pip install -e '.[bench]'` (trl).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import emit_json, print_table  # noqa: E402

PAIRS_PER_STEP, PROMPT_TOKENS, RESPONSE_TOKENS = 16, 64, 64


def make_pairs(tokenizer_dir: str, count: int, seed: int = 0) -> list[dict[str, str]]:
    """Pairs of space-separated numbers, each exactly one token of the bench tokenizer (so
    both frameworks see PROMPT_TOKENS + RESPONSE_TOKENS (+ EOS) tokens per sequence)."""
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(tokenizer_dir)
    words = [f" {i}" for i in range(1000)
             if len(tokenizer(f" {i}", add_special_tokens=False)["input_ids"]) == 1]
    rng = random.Random(seed)

    def text(n: int) -> str:
        return "".join(rng.choice(words) for _ in range(n))

    return [{"prompt": text(PROMPT_TOKENS), "chosen": text(RESPONSE_TOKENS),
             "rejected": text(RESPONSE_TOKENS)} for _ in range(count)]


def run_jaxreason(model_dir: str, tokenizer_dir: str, pairs: list[dict[str, str]], steps: int,
                  workdir: str) -> dict[str, float]:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from common import quiet_run_config, timed_train_records

    data = os.path.join(workdir, "pairs.jsonl")
    with open(data, "w") as f:
        for p in pairs:
            f.write(json.dumps(p) + "\n")
    c = quiet_run_config("dpo", model_dir, tokenizer_dir, data, steps)
    c.data.packing = False  # one pair per row: the same 16 pairs per step as TRL
    c.data.max_length = 2 * (PROMPT_TOKENS + RESPONSE_TOKENS + 1)
    c.dpo.loss = "dpo"
    c.dpo.beta = 0.1
    c.train.batch_size = PAIRS_PER_STEP
    c.train.logprob_chunk_size = 512
    timed = timed_train_records(c, workdir)
    step = statistics.median(r["step_time"] for r in timed)
    return {"step_s": step, "pairs_per_s": PAIRS_PER_STEP / step,
            "tokens_per_step": statistics.median(r["tokens"] for r in timed)
            + PAIRS_PER_STEP * 2}  # + the last token of each sequence (never an input)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=8, help="steps per side (>= 4)")
    parser.add_argument("--torch-threads", type=int, default=None)
    args = parser.parse_args()
    from grpo import build_model
    from trl_dpo_peer import run_trl_dpo

    with tempfile.TemporaryDirectory() as tmp:
        model_dir, tokenizer_dir, _ = build_model(tmp)
        pairs = make_pairs(tokenizer_dir, PAIRS_PER_STEP * (args.steps + 1))
        ours = run_jaxreason(model_dir, tokenizer_dir, pairs, args.steps, tmp)
        theirs = run_trl_dpo(model_dir, tokenizer_dir, pairs, pairs_per_step=PAIRS_PER_STEP,
                             steps=args.steps - 1, warmup_steps=1,
                             torch_threads=args.torch_threads)
    rows = [[key, ours[key], theirs[key],
             theirs["step_s"] / ours["step_s"] if key == "step_s" else
             ours[key] / theirs[key] if key == "pairs_per_s" else float("nan")]
            for key in ("step_s", "pairs_per_s", "tokens_per_step")]
    figures = {"trl_version": theirs["trl_version"], "torch_threads": theirs["torch_threads"],
               "pairs_per_step": PAIRS_PER_STEP,
               **{f"jaxreason_{k}": round(ours[k], 4) for k in ours},
               **{f"trl_{k}": round(theirs[k], 4) for k in ("step_s", "pairs_per_s",
                                                            "tokens_per_step")},
               "pairs_per_s_ratio": round(ours["pairs_per_s"] / theirs["pairs_per_s"], 3)}
    print_table(f"DPO step, {PAIRS_PER_STEP} pairs of {PROMPT_TOKENS}-token prompts and "
                f"{RESPONSE_TOKENS}-token responses, 4M-param Llama, fp32 CPU",
                ["", "jaxreason", "TRL DPOTrainer", "jaxreason / TRL"], rows)
    emit_json(figures)


if __name__ == "__main__":
    main()
