"""The cognitive-behaviors priming study at the paper's scale: Llama-3.2-3B primed per arm,
then PPO on Countdown (ALGORITHMS.md 4.3-4.4; an 8-GPU host or a TPU slice).

    python launch/train.py --config=configs/behaviors_llama32_3b.py --workdir=/runs/priming \
        --config.model.path=/models/Llama-3.2-3B \
        --config.data.train=/data/countdown_3to4/train.parquet \
        --config.eval.data=/data/countdown_3to4/test.parquet \
        --config.arms=all,backtracking,none,empty,incorrect --config.seeds=0,1

RL data: `Jiayi-Pan/Countdown-Tasks-3to4` saved locally; the paper trains on its first 327,680
rows and tests on the next 1,024 (records `{"nums", "target"}`; write the two splits to files).

Priming data, per arm (`prime_<arm>`): by default the program-written traces of
`jaxreason.data.countdown_traces` on the paper's priming problems (target 10-25, 3 or 4
numbers in 1-24, 1,000 records, the same problems for every arm). To prime with LLM-written
traces instead (the paper's Claude-3.5-Sonnet sets), point the arm at a local file of
`{"prompt", "completion"}` records (the TinyZero base prompt, ending in `<think>`):
`--config.stages.prime_all.data.generator=None --config.stages.prime_all.data.train=FILE`.

Settings from the paper's repository (ALGORITHMS.md 4.4): SFT 5 epochs, batch 64 (micro-batch
8), max length 2048; PPO (GAE gamma = lambda = 1, KL-in-reward 0.001 with the `kl` estimator,
clip 0.2, entropy 0.001, grad clip 1, actor / critic lr 1e-6 / 1e-5), 256 prompts x 4 samples
per step in 2 mini-batches of 128 prompts, T = 1, 256 prompt / 1,024 response tokens,
250 steps, held-out evaluation every 10 steps. The SFT learning rate (1e-5) is veRL's default,
not stated by the paper. Every arm starts from `model.path` (`pipeline.inherit_model` False).
"""

from ml_collections import ConfigDict

from configs import base as base_config
from configs.behaviors_countdown_tiny import ARMS


def _prime(arm: str) -> ConfigDict:
    return ConfigDict({
        "trainer": "sft",
        "pipeline": {"inherit_model": False},  # every arm from the base model
        "data": {"generator": "countdown_traces", "train": None, "task": None,
                 "generator_options": {"arm": arm, "num_train": 1000, "num_eval": 0,
                                       "num_numbers": (3, 4), "number_range": (1, 24),
                                       "target_range": (10, 25)},
                 "num_epochs": 5, "max_length": 2048, "packing": False},
        "train": {"num_steps": 0, "batch_size": 64, "num_microbatches": 8},
        "optim": {"learning_rate": 1e-5, "warmup_steps": 0, "schedule": "constant",
                  "weight_decay": 0.0},
        "eval": {"task": None, "data": None},  # the RL stage grades it at its step 0
        "checkpoint": {"every": 20}})


def _rl(arm: str) -> ConfigDict:
    return ConfigDict({
        "trainer": "ppo",  # set from `rl_trainer` by the study
        "model": {"path": f"stage:prime_{arm}.model"},
        "train": {"num_steps": 250},
        "checkpoint": {"every": 10},
        "eval": {"every": 10}})


def get_config():
    c = base_config.get_config()
    c.trainer = "priming_study"
    c.arms = ",".join(ARMS)  # arms to run, in order (jaxreason.data.countdown_traces.ARMS)
    c.seeds = "0"  # seeds, comma-separated: one pipeline per seed in <workdir>/seed_<s>
    c.rl_trainer = "ppo"  # the paper's RL: ppo | grpo
    c.shared_stages = ""  # no shared stage: the base model is model.path

    c.model.path = "/models/Llama-3.2-3B"  # set on the command line
    c.model.dtype = "bfloat16"
    c.model.remat_policy = "full"
    c.mesh.fsdp = -1
    c.data.task = "countdown"
    c.data.train = "/data/countdown_3to4/train.parquet"  # RL prompts (set on the command line)
    c.data.chat = False  # TinyZero's base prompt, ending in "<think>"
    c.data.max_length = 2048

    c.grpo.task = "countdown"  # rollouts of PPO come from the grpo section
    c.grpo.reward = "tinyzero"  # 1 solved / 0.1 well-formed / 0
    c.grpo.prompts_per_step = 256
    c.grpo.group_size = 4
    c.grpo.max_prompt_tokens = 256
    c.grpo.max_new_tokens = 1024
    c.grpo.temperature = 1.0
    c.grpo.top_p = 1.0
    c.grpo.epsilon_low = 0.2
    c.grpo.epsilon_high = 0.2
    c.ppo.kl_coef = 0.001
    c.ppo.kl_estimator = "kl"
    c.ppo.gamma = 1.0
    c.ppo.lam = 1.0
    c.ppo.entropy_coef = 0.001
    c.ppo.ppo_epochs = 1
    c.ppo.num_minibatches = 2  # PPO mini-batch of 128 prompts
    c.ppo.critic_learning_rate = 1e-5
    c.optim.learning_rate = 1e-6  # actor
    c.optim.schedule = "constant"
    c.optim.grad_clip = 1.0
    c.train.batch_size = 64

    c.eval.task = "countdown"
    c.eval.data = "/data/countdown_3to4/test.parquet"  # the 1,024 test problems
    c.eval.max_new_tokens = 1024
    c.eval.batch_size = 256

    for arm in ARMS:
        c.stages[f"prime_{arm}"] = _prime(arm)
        c.stages[f"rl_{arm}"] = _rl(arm)
    return c
