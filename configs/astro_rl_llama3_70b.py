"""ASTRO stage 5: GRPO from the ASTRO-SFT checkpoint of Llama-3.1-70B-Instruct (ASTRO,
arXiv:2507.00417; docs/recipes.md), on a TPU pod or a multi-host GPU cluster.

Paper settings: reward +1 / -1 on the final \\boxed{} answer, group size 4, no KL term,
group-normalized advantages, token-level mean (our defaults where the paper is silent: clip 0.2,
the learning rate). Prompts are the ~8.7K "moderately hard" problems (pass rate of the SFT
model strictly between 0 and 1 over 8 samples) as a jsonl with MATH fields.

    python launch/train.py --config=configs/astro_rl_llama3_70b.py --workdir=gs://.../astro_rl \\
        --config.model.path=/ckpt/astro-sft-llama3.1-70b --config.data.train=/data/astro_rl.jsonl
"""

from configs import base


def get_config():
    c = base.get_config()
    c.trainer = "grpo"
    c.model.path = "/checkpoints/astro-sft-llama-3.1-70b"  # HF directory of the SFT model
    c.model.dtype = "bfloat16"
    c.model.param_dtype = "float32"
    c.model.remat_policy = "full"
    c.model.scan_layers = True  # 80 layers: compile once
    c.mesh.data = 1
    c.mesh.fsdp = -1
    c.mesh.tensor = 8  # 64 query / 8 kv heads split over one host's 8 chips
    c.distributed.auto = True  # jax.distributed.initialize() on every host of the pod

    c.data.train = "/data/astro_rl_prompts.jsonl"  # MATH-style records (problem, solution)
    c.data.chat = True  # Llama-3 instruct chat template
    c.grpo.task = "math"
    c.grpo.reward = "astro"  # +1 correct, -1 otherwise
    c.grpo.group_size = 4
    c.grpo.prompts_per_step = 256
    c.grpo.max_prompt_tokens = 1024
    c.grpo.max_new_tokens = 8192  # ASTRO CoTs are long; response length grows during RL
    c.grpo.temperature = 1.0
    c.grpo.epsilon_low = 0.2
    c.grpo.epsilon_high = 0.2
    c.grpo.beta = 0.0
    c.grpo.normalizer = "token"
    c.grpo.normalize_std = True
    c.grpo.grading_workers = 32

    c.train.num_steps = 500
    c.train.num_microbatches = 16
    c.train.logprob_chunk_size = 1024
    c.optim.learning_rate = 1e-6
    c.optim.schedule = "constant"
    c.optim.warmup_steps = 10
    c.checkpoint.every = 25
    c.eval.task = "math"
    c.eval.data = "/data/math500.jsonl"
    c.eval.every = 50
    c.eval.max_new_tokens = 8192
    return c
