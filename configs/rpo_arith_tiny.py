"""Iterative RPO on a CPU: a tiny Llama learns synthetic arithmetic word problems (GSM8K
format) by SFT, then improves itself for 3 iterations of sample -> pair -> DPO + NLL.

Stages: `records` writes the generated problems (12,000 train / 300 held-out); `sft` trains the
tiny model (4 layers, hidden 128, 1024-token BPE) from scratch on the reference solutions
for 800 steps (about 5 epochs; held-out accuracy every 200 steps). Measured (seed 0): 0.14 /
0.45 / 0.74 / 0.87 at steps 200 / 400 / 600 / 800, so this start overshoots the 30-50% aim;
300-400 steps is the next thing to try (docs/methods_rpo.md); then 3 times: `pairs` samples
N=8 solutions (temperature 0.8) of each of 256 training problems from the current model, grades
them (an answer without `####` is a loser) and keeps up to K=4 distinct (correct, wrong)
pairs per problem; `dpo` trains 2 epochs on those pairs from the current model, which is also the frozen
reference (beta 0.1, alpha 1), and grades the 300 held-out problems greedily.

Two arms (`--config=configs/rpo_arith_tiny.py:<arm>`):
- `rpo` (default): DPO + NLL, alpha = 1 (the Iterative RPO loss);
- `dpo_only`: alpha = 0 (plain DPO), everything else equal.

One command for both arms, the second reusing the first's records and SFT model (finished
stages are skipped, their outputs read from their summary.json); results and the exact runs
behind them: docs/methods_rpo.md.

    W=/tmp/rpo_arith; python launch/train.py --config=configs/rpo_arith_tiny.py \
      --workdir=$W/rpo && mkdir -p $W/dpo_only && cp -r $W/rpo/records $W/rpo/sft \
      $W/dpo_only/ && python launch/train.py --config=configs/rpo_arith_tiny.py:dpo_only \
      --workdir=$W/dpo_only && python -m jaxreason.train.rpo_report $W/rpo $W/dpo_only
"""

from ml_collections import ConfigDict

from configs import base

ARMS = {"rpo": 1.0, "dpo_only": 0.0}  # arm -> dpo.alpha


def get_config(arm: str = "rpo"):
    if arm not in ARMS:
        raise ValueError(f"arm {arm!r}: one of {sorted(ARMS)}")
    c = base.get_config()
    c.trainer = "pipeline"
    c.pipeline.stages = "records,sft,(pairs,dpo)x3"

    base.use_tiny_llama(c)  # numbers up to a few hundred are one token each

    c.data.generator = "arithmetic"
    c.data.generator_options.num_train = 12000
    c.data.generator_options.num_eval = 300
    c.data.task = "gsm8k"
    c.data.chat = False  # "Question: ...\nAnswer:" then the equations and "#### n"
    c.data.max_length = 512
    c.data.packing = True

    c.eval.task = "gsm8k"
    c.eval.data = "stage:records.held_out"  # every model stage grades the same problems
    c.eval.max_new_tokens = 64
    c.eval.batch_size = 300
    c.eval.grading_workers = 0  # GSM8K grading is a regex: grade in-process
    c.log.every = 20
    c.checkpoint.every = 100

    c.stages.records = ConfigDict({"eval": {"data": None}})

    c.stages.sft = ConfigDict({
        "data": {"generator": None, "train": "stage:records.train"},
        "train": {"batch_size": 8, "num_steps": 800},  # ~5 epochs -> 0.87 held-out
        "optim": {"learning_rate": 3e-3, "warmup_steps": 20, "weight_decay": 0.01,
                  "final_lr_ratio": 0.1},
        "eval": {"every": 200}})

    c.stages.pairs = ConfigDict({
        "data": {"generator": None, "train": "stage:records.train"},
        "sample": {"num_prompts": 256, "max_new_tokens": 64, "max_prompt_tokens": 96,
                   "batch_size": 128, "grading_workers": 0},
        "pairs": {"n": 8, "k": 4, "temperatures": "0.8", "require_format": True}})

    c.stages.dpo = ConfigDict({
        "trainer": "dpo",
        "data": {"generator": None, "task": None, "train": "stage:pairs.pairs",
                 "num_epochs": 2},
        "dpo": {"loss": "dpo_nll", "beta": 0.1, "alpha": ARMS[arm]},
        "train": {"batch_size": 8, "num_steps": 0},  # 0: num_epochs passes over the pairs
        "optim": {"learning_rate": 3e-4, "schedule": "constant", "warmup_steps": 0,
                  "weight_decay": 0.0}})
    return c
