"""Iterative RPO on GSM8K from Llama-2-70B-Chat (the paper's main setting; a TPU pod or a
multi-GPU host).

Four iterations of: sample N=30 chains of thought per GSM8K training question from the current
model (temperature 0.8 in iterations 1-2, 1.3 in 3-4), grade them by exact match of the final
answer (an answer without a `####` / "Final answer" / "The answer is" marker is a loser), keep up
to K=10 distinct (correct, wrong) pairs per question, then train DPO + NLL (beta 0.1, alpha 1,
AdamW, lr 7e-7, 16 pairs per step) from the current model with it as the frozen reference.
Reference log-probs are computed once per iteration before training, so only one 70B model is
in memory. Every `dpo` stage grades the GSM8K test set greedily.

Not reproduced here (UNCONFIRMED in the paper): choosing each iteration's checkpoint by accuracy
on 1K held-out training questions and retraining with them; we train a fixed 5,000 steps.

    python launch/train.py --config=configs/rpo_gsm8k_llama2_70b.py --workdir=/runs/rpo70b \
        --config.model.path=/mnt/models/Llama-2-70b-chat-hf \
        --config.data.train=/mnt/data/gsm8k/train.jsonl \
        --config.eval.data=/mnt/data/gsm8k/test.jsonl

On a multi-host pod add `--config.distributed.auto=True` (every host runs the same command).
"""

from ml_collections import ConfigDict

from configs import base


def get_config():
    c = base.get_config()
    c.trainer = "pipeline"
    c.pipeline.stages = "(pairs,dpo)x4"

    c.model.path = "/checkpoints/Llama-2-70b-chat-hf"  # local HF directory (config + weights)
    c.model.dtype = "bfloat16"
    c.model.param_dtype = "float32"
    c.model.remat_policy = "dots_no_batch"
    c.model.scan_layers = True
    c.mesh.data = 1
    c.mesh.fsdp = -1
    c.mesh.tensor = 1

    c.data.train = "/data/gsm8k/train.jsonl"  # GSM8K train split (question, answer)
    c.data.task = "gsm8k"
    c.data.chat = True  # Llama-2 chat template
    c.eval.task = "gsm8k"
    c.eval.data = "/data/gsm8k/test.jsonl"
    c.eval.max_new_tokens = 512
    c.eval.batch_size = 64

    c.stages.pairs = ConfigDict({
        "sample": {"num_prompts": 0, "max_new_tokens": 512, "max_prompt_tokens": 512,
                   "batch_size": 64, "top_p": 1.0},
        "pairs": {"n": 30, "k": 10, "temperatures": "0.8,0.8,1.3,1.3",
                  "require_format": True}})
    c.stages.dpo = ConfigDict({
        "trainer": "dpo",
        "data": {"task": None, "train": "stage:pairs.pairs", "packing": False,
                 "max_length": 2048},  # one pair per row: prompt + chosen and prompt + rejected
        "dpo": {"loss": "dpo_nll", "beta": 0.1, "alpha": 1.0, "max_prompt_tokens": 512},
        "train": {"batch_size": 16, "num_steps": 5000, "num_microbatches": 1},
        "optim": {"learning_rate": 7e-7, "schedule": "constant", "warmup_steps": 0,
                  "weight_decay": 0.0, "grad_clip": 1.0},
        "checkpoint": {"every": 500, "max_to_keep": 2, "export_dtype": "bfloat16"}})
    return c
