"""RLVR baseline: GRPO on MATH train from Qwen2.5-7B-Instruct with a verifiable 1/0 reward
(DeepSeekMath's GRPO with DAPO's token-level mean and clip-higher: docs/methods.md, section
"GRPO, DAPO and Dr. GRPO"), on one 8-GPU host or a small TPU slice.

    python launch/train.py --config=configs/rlvr_qwen25_7b_math.py --workdir=/runs/rlvr \\
        --config.model.path=/models/Qwen2.5-7B-Instruct --config.data.train=/data/math/train.jsonl
"""

from configs import base


def get_config():
    c = base.get_config()
    c.trainer = "grpo"
    c.model.path = "/models/Qwen2.5-7B-Instruct"  # local HF directory
    c.model.dtype = "bfloat16"
    c.model.param_dtype = "float32"
    c.model.remat_policy = "dots"
    c.mesh.data = 1
    c.mesh.fsdp = -1
    c.mesh.tensor = 1

    c.data.train = "/data/math/train.jsonl"  # MATH records: problem, solution (\\boxed{})
    c.data.chat = True  # Qwen chat template
    c.grpo.task = "math"
    c.grpo.reward = "binary"
    c.grpo.group_size = 16
    c.grpo.prompts_per_step = 64
    c.grpo.max_prompt_tokens = 512
    c.grpo.max_new_tokens = 1024
    c.grpo.epsilon_low = 0.2
    c.grpo.epsilon_high = 0.28  # DAPO clip-higher
    c.grpo.beta = 0.0
    c.grpo.normalizer = "token"
    c.grpo.dynamic_sampling = True  # drop groups that are all right or all wrong
    c.grpo.max_sampling_rounds = 3
    c.grpo.mask_truncated = True
    c.grpo.num_minibatches = 4  # 4 updates per rollout batch (old log-probs recomputed)
    c.grpo.grading_workers = 16

    c.train.num_steps = 300
    c.train.num_microbatches = 4
    c.optim.learning_rate = 1e-6
    c.optim.schedule = "constant"
    c.optim.weight_decay = 0.0
    c.checkpoint.every = 20
    c.eval.task = "math"
    c.eval.data = "/data/math/dev.jsonl"
    c.eval.every = 25
    c.eval.max_new_tokens = 1024
    return c
