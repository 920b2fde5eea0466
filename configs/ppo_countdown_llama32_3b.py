"""PPO with a critic on Countdown from Llama-3.2-3B: the Cognitive-behaviors baseline RL run at
the paper's scale (ALGORITHMS.md 4.3-4.4; an 8-GPU host or a TPU slice).

    python launch/train.py --config=configs/ppo_countdown_llama32_3b.py --workdir=/runs/ppo_3b \
        --config.model.path=/models/Llama-3.2-3B \
        --config.data.train=/data/countdown_3to4/train.parquet \
        --config.eval.data=/data/countdown_3to4/test.parquet

Data: `Jiayi-Pan/Countdown-Tasks-3to4` saved locally; the paper trains on its first 327,680 rows
and tests on the next 1,024 (records `{"nums", "target"}`). TinyZero's base prompt (no chat
template, the assistant turn starts with "Let me solve this step by step.\n<think>") and
reward (1 solved / 0.1 well-formed / 0, on the last token).

Settings from the paper's repository (veRL PPO): GAE gamma = lambda = 1; KL in the reward,
coefficient 0.001, estimator `kl` = log pi - log pi_ref, fixed controller; clip 0.2, value clip
0.5, entropy 0.001, gradient clip 1.0; actor / critic learning rates 1e-6 / 1e-5; 256 prompts
x 4 samples per step, PPO mini-batch of 128 prompts (2 minibatches), 1 PPO epoch;
temperature 1, top-p 1; 256 prompt / 1,024 response tokens; about 250 steps (15 epochs of the
paper's schedule), held-out evaluation every 10 steps. The critic starts from the policy's
transformer with a zero head (veRL initializes it from the actor's checkpoint too).
"""

from configs import base


def get_config():
    c = base.get_config()
    c.trainer = "ppo"
    c.model.path = "/models/Llama-3.2-3B"  # local HF directory (set on the command line)
    c.model.dtype = "bfloat16"
    c.model.param_dtype = "float32"
    c.model.remat_policy = "full"
    c.mesh.data = 1
    c.mesh.fsdp = -1
    c.mesh.tensor = 1

    c.data.train = "/data/countdown_3to4/train.parquet"  # the first 327,680 rows
    c.data.task = "countdown"
    c.data.chat = False  # TinyZero's base prompt, ending in "<think>"

    c.grpo.task = "countdown"  # rollouts of PPO come from the grpo section
    c.grpo.reward = "tinyzero"  # 1 solved / 0.1 well-formed / 0
    c.grpo.prompts_per_step = 256
    c.grpo.group_size = 4  # rollout.n = 4
    c.grpo.max_prompt_tokens = 256
    c.grpo.max_new_tokens = 1024
    c.grpo.temperature = 1.0
    c.grpo.top_p = 1.0
    c.grpo.epsilon_low = 0.2
    c.grpo.epsilon_high = 0.2
    c.grpo.grading_workers = 16

    c.ppo.kl_coef = 0.001
    c.ppo.kl_estimator = "kl"
    c.ppo.gamma = 1.0
    c.ppo.lam = 1.0
    c.ppo.value_clip = 0.5
    c.ppo.entropy_coef = 0.001
    c.ppo.ppo_epochs = 1
    c.ppo.num_minibatches = 2  # PPO mini-batch of 128 prompts
    c.ppo.critic_learning_rate = 1e-5
    c.ppo.critic_warmup_steps = 0

    c.train.num_steps = 250
    c.train.num_microbatches = 16  # 512 rows per update, 32 rows per micro-batch
    c.optim.learning_rate = 1e-6  # actor
    c.optim.schedule = "constant"
    c.optim.warmup_steps = 0
    c.optim.weight_decay = 0.0
    c.optim.grad_clip = 1.0
    c.checkpoint.every = 10

    c.eval.task = "countdown"
    c.eval.data = "/data/countdown_3to4/test.parquet"  # the next 1,024 rows
    c.eval.every = 10
    c.eval.max_new_tokens = 1024
    c.eval.batch_size = 256
    return c
