"""Seconds per PPO step, split into sampling / grading / training: jaxreason's PPO vs TRL.

TRL's PPOTrainer is gone from the installed TRL (1.x has no `trl.PPOTrainer`, nor one under
`trl.experimental`), so the peer measured here is TRL's GRPOTrainer on the same tiny random
Llama, tokenizer, prompts, reward and batch (`bench/grpo.py`'s setup: 8 prompts x 4 samples,
64 new tokens at temperature 1, float32 CPU, one update per step). A GRPO step does strictly
less than a PPO step (no critic forward and backward, no value head, no reference forward),
so `step_ratio` = TRL GRPO / jaxreason PPO is a lower bound of the ratio against a TRL PPO
step. The same run also times jaxreason's own GRPO step on that batch (`ppo_over_grpo`: what
the critic, the reference model and GAE add). Our PPO uses the tiny recipe's settings: KL in
the reward (0.001, so a reference forward), critic learning rate 10x the actor's, one epoch,
one minibatch. The first steps (compilation / warm-up) are excluded; figures are medians.

Usage: python bench/ppo.py [--steps 5] [--torch-threads N]
Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common import emit_json, print_table  # noqa: E402
from grpo import (GROUP_SIZE, MAX_NEW_TOKENS, MAX_PROMPT_TOKENS, PROMPTS_PER_STEP,  # noqa: E402
                  build_model, contains_equals, run_jaxreason)

KEYS = ("step_s", "sample_s", "grade_s", "train_s")


def trl_has_ppo() -> str:
    """The installed TRL's version, and whether it still has a PPOTrainer."""
    import trl

    try:
        from trl import PPOTrainer  # noqa: F401
        return f"{trl.__version__} (has PPOTrainer, not used by this script)"
    except ImportError:
        return f"{trl.__version__} (no PPOTrainer)"


def run_ppo(model_dir: str, tokenizer_dir: str, prompts: list[str], steps: int,
            workdir: str) -> dict[str, float]:
    """jaxreason's PPO on `bench/grpo.py`'s batch: `run_jaxreason` with trainer "ppo"."""
    def ppo_section(c):
        c.trainer = "ppo"
        c.ppo.kl_coef = 0.001
        c.ppo.critic_learning_rate = 1e-4
        c.ppo.ppo_epochs = 1
        c.ppo.num_minibatches = 1
    return run_jaxreason(model_dir, tokenizer_dir, prompts, steps, workdir, edit=ppo_section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=5, help="steps per side (>= 4)")
    parser.add_argument("--torch-threads", type=int, default=None)
    args = parser.parse_args()
    from trl_grpo_peer import run_trl_grpo

    with tempfile.TemporaryDirectory() as tmp:
        model_dir, tokenizer_dir, prompts = build_model(tmp)
        ppo = run_ppo(model_dir, tokenizer_dir, prompts, args.steps, os.path.join(tmp, "ppo"))
        grpo = run_jaxreason(model_dir, tokenizer_dir, prompts, args.steps,
                             os.path.join(tmp, "grpo"))
        trl = run_trl_grpo(model_dir, tokenizer_dir, prompts[: PROMPTS_PER_STEP * args.steps],
                           contains_equals, prompts_per_step=PROMPTS_PER_STEP,
                           group_size=GROUP_SIZE, max_prompt_tokens=MAX_PROMPT_TOKENS,
                           max_new_tokens=MAX_NEW_TOKENS, steps=args.steps - 1,
                           warmup_steps=1, learning_rate=1e-5,
                           torch_threads=args.torch_threads)
    figures: dict[str, float | str] = {"trl_version": trl_has_ppo(),
                                       "peer": "trl.GRPOTrainer (no TRL PPOTrainer installed)"}
    rows = []
    for key in KEYS:
        ratio = trl[key] / ppo[key] if ppo[key] > 0 else float("nan")
        rows.append([key, ppo[key], grpo[key], trl[key], ratio])
        for side, values in (("jaxreason_ppo", ppo), ("jaxreason_grpo", grpo), ("trl_grpo", trl)):
            figures[f"{side}_{key}"] = round(values[key], 4)
    rows.append(["completion_tokens_per_step", ppo["completion_tokens_per_step"],
                 grpo["completion_tokens_per_step"], trl["completion_tokens_per_step"],
                 float("nan")])
    figures["step_ratio"] = round(trl["step_s"] / ppo["step_s"], 3)
    figures["ppo_over_grpo"] = round(ppo["train_s"] / max(grpo["train_s"], 1e-9), 3)
    print_table(f"PPO step, {PROMPTS_PER_STEP} prompts x {GROUP_SIZE} samples, "
                f"{MAX_NEW_TOKENS} new tokens, 4M-param Llama, fp32 CPU; TRL {trl_has_ppo()}",
                ["", "jaxreason PPO", "jaxreason GRPO", "TRL GRPOTrainer",
                 "TRL GRPO / jaxreason PPO"], rows)
    print(f"median of steps 3..{args.steps} (jaxreason) and 2..{args.steps} (TRL); "
          f"step_ratio is a lower bound of TRL-PPO / jaxreason-PPO")
    emit_json(figures)


if __name__ == "__main__":
    main()
