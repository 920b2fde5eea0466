"""Seconds per PPO step, split into sampling / grading / training: jaxreason's PPO vs TRL's.

The peer is TRL's own PPO trainer (`trl.experimental.ppo.PPOTrainer` of TRL 0.29.1, the last
TRL that has one; `bench/trl_ppo_peer.py` installs it aside and runs it in a subprocess). Both
sides train the same tiny random Llama (`bench/grpo.py`'s: ~4M parameters, 512-token BPE, float32
CPU) with a critic that is a full copy of it, a frozen reference for the KL-in-reward (0.001,
k1), the same rule reward ("contains =", graded without a model on both sides), 32 completions
per step (32 prompts x 1 sample), 64 new tokens at temperature 1, one epoch of one minibatch,
AdamW, pi_old's log-probs taken from sampling (TRL: the generation logits; ours:
`ppo.old_logprobs = "sampler"`), so both sides run a reference and a critic forward, then
one forward + backward of actor and critic. The same run also times jaxreason's GRPO step on `bench/grpo.py`'s batch
(`ppo_over_grpo`: what the critic, the reference and GAE add to the update). The first step
(compilation / warm-up) is excluded; figures are medians.

Usage: python bench/ppo.py [--steps 5] [--torch-threads N] [--trl-dir DIR]
Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common import emit_json, print_table  # noqa: E402
from grpo import (GROUP_SIZE, MAX_NEW_TOKENS, MAX_PROMPT_TOKENS, PROMPTS_PER_STEP,  # noqa: E402
                  build_model, run_jaxreason)

KEYS = ("step_s", "sample_s", "grade_s", "train_s")
ROWS = PROMPTS_PER_STEP * GROUP_SIZE  # completions per step


def run_ppo(model_dir: str, tokenizer_dir: str, prompts: list[str], steps: int,
            workdir: str) -> dict[str, float]:
    """jaxreason's PPO on the matched batch: `run_jaxreason` with trainer "ppo"."""
    def ppo_section(c):
        c.trainer = "ppo"
        c.grpo.prompts_per_step, c.grpo.group_size = ROWS, 1  # one sample per prompt, as TRL
        c.ppo.kl_coef = 0.001
        c.ppo.critic_learning_rate = 1e-4
        c.ppo.ppo_epochs = 1
        c.ppo.num_minibatches = 1
        c.ppo.old_logprobs = "sampler"  # pi_old from the sampler, as TRL (generation logits)
    return run_jaxreason(model_dir, tokenizer_dir, prompts, steps, workdir, edit=ppo_section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=5, help="steps per side (>= 4)")
    parser.add_argument("--torch-threads", type=int, default=None)
    parser.add_argument("--trl-dir", default=None,
                        help="where TRL 0.29.1 is (installed there if missing)")
    args = parser.parse_args()
    from trl_ppo_peer import ensure_trl_ppo, run_in_subprocess

    trl_dir = ensure_trl_ppo(args.trl_dir)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, tokenizer_dir, prompts = build_model(tmp)
        ppo = run_ppo(model_dir, tokenizer_dir, prompts, args.steps, os.path.join(tmp, "ppo"))
        grpo = run_jaxreason(model_dir, tokenizer_dir, prompts, args.steps,
                             os.path.join(tmp, "grpo"))
        trl = run_in_subprocess(trl_dir, model_dir, tokenizer_dir,
                                prompts[: ROWS * args.steps], args.steps, rows=ROWS,
                                max_prompt_tokens=MAX_PROMPT_TOKENS,
                                max_new_tokens=MAX_NEW_TOKENS, torch_threads=args.torch_threads)
    figures: dict[str, float | str] = {"peer": f"trl.experimental.ppo.PPOTrainer "
                                               f"{trl['trl_version']}"}
    rows = []
    for key in KEYS:
        ratio = trl[key] / ppo[key] if ppo[key] > 0 else float("nan")
        rows.append([key, ppo[key], trl[key], ratio, grpo[key]])
        for side, values in (("jaxreason_ppo", ppo), ("trl_ppo", trl), ("jaxreason_grpo", grpo)):
            figures[f"{side}_{key}"] = round(values[key], 4)
    rows.append(["completion_tokens_per_step", ppo["completion_tokens_per_step"],
                 trl["completion_tokens_per_step"], float("nan"),
                 grpo["completion_tokens_per_step"]])
    figures["step_ratio"] = round(trl["step_s"] / ppo["step_s"], 3)
    figures["train_ratio"] = round(trl["train_s"] / max(ppo["train_s"], 1e-9), 3)
    figures["ppo_over_grpo"] = round(ppo["train_s"] / max(grpo["train_s"], 1e-9), 3)
    print_table(f"PPO step, {ROWS} prompts x 1 sample, {MAX_NEW_TOKENS} new tokens, "
                f"4M-param Llama + critic + reference, fp32 CPU",
                ["", "jaxreason PPO", f"TRL {trl['trl_version']} PPO",
                 "TRL / jaxreason", "jaxreason GRPO (8 x 4)"], rows)
    print(f"median of steps 3..{args.steps} (jaxreason) and 2..{args.steps} (TRL)")
    emit_json(figures)


if __name__ == "__main__":
    main()
