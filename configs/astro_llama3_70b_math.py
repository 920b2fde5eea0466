"""ASTRO end to end on math with Llama-3.1-70B-Instruct (arXiv:2507.00417; docs/astro.md), on a
TPU pod or a multi-host GPU cluster: search -> clone -> SFT -> GRPO, plus the Direct arm.

Paper settings where the paper gives them (k=8 candidates, M=16 rollouts, 32 iterations,
depth 50, per problem 1 direct + 3 search traces with k in {0,1,2}, SFT 1 epoch at 3e-6
cosine with the loss on all tokens and length 8192, GRPO with G=4 and +1/-1); our defaults
where it does not (c_puct 1.0, a blank line ends a step, GRPO clip 0.2, no KL). Local paths:

    python launch/train.py --config=configs/astro_llama3_70b_math.py --workdir=/runs/astro70b \\
        --config.model.path=/ckpt/Llama-3.1-70B-Instruct \\
        --config.stages.search.data.train=/data/astro_search_problems.jsonl \\
        --config.stages.grpo_astro.data.train=/data/astro_rl_prompts.jsonl

Every process of the pod searches its own shard of problems (`search.batch_size` problems
per unit) and writes `search/trees.p<process>.jsonl`; the merged `trees.jsonl` feeds `clone`.
The self-evaluation filter and the LLM rewrite of connectives are not used (fixed phrases
only). Per-stage compute: ~k*M*iterations rollouts per problem (20.7K problems in the paper).
"""

from ml_collections import ConfigDict

from configs import base

BASE_MODEL = "/checkpoints/Llama-3.1-70B-Instruct"
SEARCH_PROBLEMS = "/data/astro_search_problems.jsonl"  # MATH-style records {problem, solution}
RL_PROMPTS = "/data/astro_rl_prompts.jsonl"  # the ~8.7K moderately hard problems
HELD_OUT = "/data/math500.jsonl"


def get_config():
    c = base.get_config()
    c.trainer = "pipeline"
    c.pipeline.stages = "search,clone,sft_astro,sft_direct,grpo_astro,grpo_direct"
    c.model.path = BASE_MODEL
    c.model.dtype = "bfloat16"
    c.model.param_dtype = "float32"
    c.model.remat_policy = "full"
    c.model.scan_layers = True
    c.mesh.data = 1
    c.mesh.fsdp = -1
    c.mesh.tensor = 8
    c.distributed.auto = True
    c.data.chat = True
    c.data.task = "math"
    c.data.max_length = 8192
    c.eval.task = "math"
    c.eval.data = HELD_OUT
    c.eval.max_new_tokens = 8192

    c.search.task = "math"
    c.search.reward = "astro"
    c.search.k = 8
    c.search.rollouts = 16
    c.search.iterations = 32
    c.search.max_depth = 50
    c.search.c_puct = 1.0
    c.search.delimiter = "\n\n"
    c.search.max_step_tokens = 512
    c.search.max_rollout_tokens = 4096
    c.search.temperature = 1.0
    c.search.batch_size = 64
    c.search.grading_workers = 32
    c.clone.num_direct = 1
    c.clone.num_search = 3
    c.clone.ks = "0,1,2"

    c.stages.search = ConfigDict({"data": {"train": SEARCH_PROBLEMS}})
    c.stages.clone = ConfigDict({"clone": {"trees": "stage:search.trees"}})
    for arm in ("astro", "direct"):
        c.stages[f"sft_{arm}"] = ConfigDict({
            "trainer": "sft",
            "model": {"path": BASE_MODEL},
            "data": {"train": f"stage:clone.{arm}", "task": None, "loss_on": "all",
                     "num_epochs": 1},
            "train": {"num_steps": 0, "batch_size": 64, "num_microbatches": 8},
            "optim": {"learning_rate": 3e-6, "schedule": "cosine", "warmup_steps": 10}})
        c.stages[f"grpo_{arm}"] = ConfigDict({
            "trainer": "grpo",
            "model": {"path": f"stage:sft_{arm}.model"},
            "data": {"train": RL_PROMPTS},
            "grpo": {"task": "math", "reward": "astro", "group_size": 4,
                     "prompts_per_step": 256, "max_prompt_tokens": 1024,
                     "max_new_tokens": 8192, "epsilon_low": 0.2, "epsilon_high": 0.2,
                     "beta": 0.0, "normalizer": "token", "grading_workers": 32},
            "train": {"num_steps": 500, "num_microbatches": 16},
            "optim": {"learning_rate": 1e-6, "schedule": "constant", "warmup_steps": 10},
            "checkpoint": {"every": 25},
            "eval": {"every": 50}})
    return c
