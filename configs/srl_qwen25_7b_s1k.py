"""SRL, then SRL -> RLVR, on s1K-style expert trajectories from Qwen2.5-7B-Instruct, with the
SRL paper's settings (docs/srl.md), on one 8-GPU host or a TPU slice.

    python launch/train.py --config=configs/srl_qwen25_7b_s1k.py --workdir=/runs/srl_s1k \\
        --config.model.path=/models/Qwen2.5-7B-Instruct \\
        --config.srl.trajectories=/data/s1k/trajectories.jsonl

Stages:
1. `steps` (srl_steps): the trajectories file, one JSON object per line, either
   `{id, problem, steps: [...], final_answer}` or `{id, problem, solution, final_answer}` with
   the solution split into steps by `srl.parser` ("auto": numbered lines, `Step N:` lines or
   bold headers, else paragraphs; for s1K-1.1, the numbered steps of R1's final solution).
   Step instances k = 2..N; 10% of the trajectories are the validation split.
2. `srl`: GRPO with the SRL task: G = 8, learning rate 5e-7, KL 0, clip 0.2, temperature 1,
   dynamic sampling with the population-std filter 0.01, 64 instances x 8 rollouts = 512
   samples per step (the paper's "batch size 512"; whether it counts prompts or samples is not
   stated). Validation: greedy mean similarity on the validation step instances every 50 steps;
   all checkpoints of those steps are kept so the best can be picked.
3. `rlvr`: GRPO with the MATH grader's 1/0 outcome reward on the same problems
   (`problems.jsonl`: problem and final answer), from the SRL export, DAPO-style filter of
   all-equal groups, 128 x 8 per step.

Paths are local: no download happens. Evaluate exports with `launch/eval.py
--config=configs/eval/math.py` (AMC23, AIME24/25, Minerva; greedy and Avg@32).
"""

from ml_collections import ConfigDict

from configs import base


def get_config():
    c = base.get_config()
    c.trainer = "pipeline"
    c.pipeline.stages = "steps,srl,rlvr"
    c.model.path = "/models/Qwen2.5-7B-Instruct"  # local HF directory
    c.model.dtype = "bfloat16"
    c.model.param_dtype = "float32"
    c.model.remat_policy = "dots"
    c.mesh.data = 1
    c.mesh.fsdp = -1
    c.mesh.tensor = 1
    c.data.chat = True  # Qwen chat template

    c.srl.trajectories = "/data/s1k/trajectories.jsonl"
    c.srl.parser = "auto"
    c.srl.k_start = 2  # N - 1 instances per trajectory
    c.srl.k_end = 0
    c.srl.val_fraction = 0.1

    c.stages.steps = ConfigDict({"trainer": "srl_steps"})
    c.stages.srl = ConfigDict({
        "trainer": "grpo",
        "data": {"train": "stage:steps.steps", "task": "srl"},
        "grpo": {"task": "srl", "group_size": 8, "prompts_per_step": 64,
                 "max_prompt_tokens": 4096, "max_new_tokens": 4096, "temperature": 1.0,
                 "epsilon_low": 0.2, "epsilon_high": 0.2, "beta": 0.0,
                 "normalizer": "token", "dynamic_sampling": True, "min_group_std": 0.01,
                 "max_sampling_rounds": 4, "num_minibatches": 4, "grading_workers": 16},
        "train": {"num_steps": 1500, "num_microbatches": 8},
        "optim": {"learning_rate": 5e-7, "schedule": "constant", "weight_decay": 0.0},
        "checkpoint": {"every": 50, "max_to_keep": 30},
        "eval": {"task": "srl", "data": "stage:steps.steps_val", "every": 50,
                 "max_new_tokens": 4096}})
    c.stages.rlvr = ConfigDict({
        "trainer": "grpo",
        "data": {"train": "stage:steps.problems", "task": "math"},
        "grpo": {"task": "math", "reward": "binary", "group_size": 8, "prompts_per_step": 128,
                 "max_prompt_tokens": 1024, "max_new_tokens": 4096, "temperature": 1.0,
                 "epsilon_low": 0.2, "epsilon_high": 0.28, "beta": 0.0,
                 "dynamic_sampling": True, "max_sampling_rounds": 4, "mask_truncated": True,
                 "num_minibatches": 4, "grading_workers": 16},
        "train": {"num_steps": 300, "num_microbatches": 8},
        "optim": {"learning_rate": 5e-7, "schedule": "constant", "weight_decay": 0.0},
        "checkpoint": {"every": 25},
        "eval": {"task": "math", "data": "stage:steps.problems_val", "every": 25,
                 "max_new_tokens": 4096}})
    return c
