"""Iterative RPO on MATH from Llama-3.1-8B-Instruct (a TPU pod slice or a multi-GPU host).

Three iterations of: sample N=20 solutions per MATH training problem from the current model
(temperature 0.8), grade the last `\\boxed{}` answer with the MATH grader (no boxed answer is a
loser), keep up to K=15 distinct (correct, wrong) pairs per problem, then train DPO + NLL
(beta 0.1, alpha 1, lr 7e-7, 16 pairs per step) from the current model with it as the frozen
reference (its log-probs computed once per iteration, before training). Every `dpo` stage
grades the MATH dev split greedily. N, K and the number of iterations for MATH are the paper's
as reported second-hand (UNCONFIRMED); the model here is Llama-3.1-8B-Instruct, not the paper's
Llama-2-70B-Chat.

    python launch/train.py --config=configs/rpo_math_llama3_8b.py --workdir=/runs/rpo_math \
        --config.model.path=/mnt/models/Llama-3.1-8B-Instruct \
        --config.data.train=/mnt/data/math/train.jsonl --config.eval.data=/mnt/data/math/dev.jsonl
"""

from ml_collections import ConfigDict

from configs import base


def get_config():
    c = base.get_config()
    c.trainer = "pipeline"
    c.pipeline.stages = "(pairs,dpo)x3"

    c.model.path = "checkpoints/Llama-3.1-8B-Instruct"  # local HF directory (config + weights)
    c.model.dtype = "bfloat16"
    c.model.param_dtype = "float32"
    c.model.remat_policy = "dots_no_batch"
    c.model.scan_layers = True
    c.mesh.data = 1
    c.mesh.fsdp = -1
    c.mesh.tensor = 1

    c.data.train = "data/math/train.jsonl"  # MATH train split (problem, solution)
    c.data.task = "math"
    c.data.chat = True  # Llama-3 instruct chat template
    c.eval.task = "math"
    c.eval.data = "data/math/dev.jsonl"
    c.eval.max_new_tokens = 1024
    c.eval.batch_size = 64

    c.stages.pairs = ConfigDict({
        "sample": {"num_prompts": 0, "max_new_tokens": 1024, "max_prompt_tokens": 512,
                   "batch_size": 64},
        "pairs": {"n": 20, "k": 15, "temperatures": "0.8", "require_format": True}})
    c.stages.dpo = ConfigDict({
        "trainer": "dpo",
        "data": {"task": None, "train": "stage:pairs.pairs", "packing": False,
                 "max_length": 3072, "num_epochs": 1},  # one pair per row, one pass
        "dpo": {"loss": "dpo_nll", "beta": 0.1, "alpha": 1.0, "max_prompt_tokens": 512,
                "skip_invalid_pairs": False},
        "train": {"batch_size": 16, "num_steps": 0, "num_microbatches": 1},
        "optim": {"learning_rate": 7e-7, "schedule": "constant", "warmup_steps": 0,
                  "weight_decay": 0.0, "grad_clip": 1.0},
        "checkpoint": {"every": 500, "max_to_keep": 2, "export_dtype": "bfloat16"}})
    return c
