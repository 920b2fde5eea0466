"""Seconds per GRPO step, split into sampling / grading / training: jaxreason vs TRL.

Both train the same tiny random Llama (saved once by `transformers`) with the same tokenizer,
prompts, reward, batch (8 prompts x 4 samples), 64 new tokens at temperature 1, float32 on the
CPU, one optimizer update per step, no KL term, token-level loss mean. TRL's side is
`bench/trl_grpo_peer.py` (`trl.GRPOTrainer`, PyTorch CPU). The first step (compilation on our
side, warm-up on TRL's) is excluded; figures are medians over the timed steps.

Usage: python bench/grpo.py [--steps 4] [--torch-threads N]
Prints a table and, last, one JSON line. Needs `pip install -e '.[bench]'` (trl).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import emit_json, print_table  # noqa: E402

PROMPTS_PER_STEP, GROUP_SIZE, MAX_PROMPT_TOKENS, MAX_NEW_TOKENS = 8, 4, 64, 64


def contains_equals(records, completions):
    """The benchmark's reward (cheap on both sides): 1 if the completion writes an equation."""
    return [1.0 if "=" in c else 0.0 for c in completions]


def build_model(directory: str) -> tuple[str, str, list[str]]:
    """(model dir, tokenizer dir, prompts): a ~4M-parameter Llama and a 512-token BPE."""
    import torch
    import transformers

    from jaxreason.tokenizer import train_bpe_tokenizer
    from trl_grpo_peer import _countdown_texts

    prompts = _countdown_texts(2000)
    corpus = prompts + [f"{a} + {b} = {a + b}\n{a} * {b} = {a * b}\n"
                        for a, b in zip(range(1, 200), range(200, 1, -1))]
    tokenizer = train_bpe_tokenizer(corpus, 512)
    model_dir, tokenizer_dir = os.path.join(directory, "model"), os.path.join(directory, "tok")
    tokenizer.save_pretrained(tokenizer_dir)
    tokenizer.save_pretrained(model_dir)
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=256, intermediate_size=688, num_hidden_layers=4,
        num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=1024,
        tie_word_embeddings=False, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    transformers.LlamaForCausalLM(config).save_pretrained(model_dir)
    return model_dir, tokenizer_dir, prompts


def run_jaxreason(model_dir: str, tokenizer_dir: str, prompts: list[str], steps: int,
                  workdir: str, edit: Any = None) -> dict[str, float]:
    """Our GRPO on the benchmark batch; `edit(config)` may change it (bench/ppo.py: PPO)."""
    os.makedirs(workdir, exist_ok=True)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from common import quiet_run_config, timed_train_records

    data = os.path.join(workdir, "prompts.jsonl")
    with open(data, "w") as f:
        for p in prompts[: PROMPTS_PER_STEP * GROUP_SIZE * steps]:  # enough for one per row
            f.write(json.dumps({"prompt": p}) + "\n")
    c = quiet_run_config("grpo", model_dir, tokenizer_dir, data, steps)
    c.mesh.fsdp = -1
    c.grpo.reward_fn = "grpo:contains_equals"
    c.grpo.prompts_per_step = PROMPTS_PER_STEP
    c.grpo.group_size = GROUP_SIZE
    c.grpo.max_prompt_tokens = MAX_PROMPT_TOKENS
    c.grpo.max_new_tokens = MAX_NEW_TOKENS
    if edit is not None:
        edit(c)
    # step_time of step s spans one full cycle (train s, then sample + grade s + 1).
    timed = timed_train_records(c, workdir)
    med = lambda key: statistics.median(r[key] for r in timed)  # noqa: E731
    step = med("step_time")
    sample, grade = med("sample_time"), med("grade_time")
    return {"step_s": step, "sample_s": sample, "grade_s": grade,
            "train_s": max(step - sample - grade, 0.0),
            "completion_tokens_per_step": med("response_length_mean") * PROMPTS_PER_STEP *
            GROUP_SIZE}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=5, help="steps per side (>= 4)")
    parser.add_argument("--torch-threads", type=int, default=None)
    args = parser.parse_args()
    from trl_grpo_peer import run_trl_grpo

    with tempfile.TemporaryDirectory() as tmp:
        model_dir, tokenizer_dir, prompts = build_model(tmp)
        ours = run_jaxreason(model_dir, tokenizer_dir, prompts, args.steps, tmp)
        theirs = run_trl_grpo(model_dir, tokenizer_dir, prompts[: PROMPTS_PER_STEP * args.steps],
                              contains_equals, prompts_per_step=PROMPTS_PER_STEP,
                              group_size=GROUP_SIZE, max_prompt_tokens=MAX_PROMPT_TOKENS,
                              max_new_tokens=MAX_NEW_TOKENS, steps=args.steps - 1,
                              warmup_steps=1, learning_rate=1e-5,
                              torch_threads=args.torch_threads)
    rows = []
    figures: dict[str, float | str] = {"trl_version": theirs["trl_version"]}
    for key in ("step_s", "sample_s", "grade_s", "train_s", "completion_tokens_per_step"):
        ratio = theirs[key] / ours[key] if ours[key] > 0 and key != "completion_tokens_per_step" \
            else float("nan")
        rows.append([key, ours[key], theirs[key], ratio])
        figures[f"jaxreason_{key}"] = round(ours[key], 4)
        figures[f"trl_{key}"] = round(theirs[key], 4)
    figures["step_ratio"] = round(theirs["step_s"] / ours["step_s"], 3)
    print_table(f"GRPO step, {PROMPTS_PER_STEP} prompts x {GROUP_SIZE} samples, "
                f"{MAX_NEW_TOKENS} new tokens, 4M-param Llama, fp32 CPU",
                ["", "jaxreason", "TRL GRPOTrainer", "TRL / jaxreason"], rows)
    emit_json(figures)


if __name__ == "__main__":
    main()
