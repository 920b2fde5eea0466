"""PPO with a critic on Countdown at tiny scale, from the default job's SFT model (CPU, ~20 min).

The Cognitive-behaviors PPO recipe (ALGORITHMS.md 4.4: veRL PPO, GAE gamma = lambda = 1,
KL-in-reward 0.001 with the `kl` estimator and a fixed controller, clip 0.2, value clip 0.5,
entropy 0.001, critic learning rate 10x the actor's, 4 samples per prompt, 2 minibatches per
batch, 1 PPO epoch, temperature 1, TinyZero reward 1 / 0.1 / 0) scaled to the tiny model:
a pipeline whose first stage is the SFT of `configs/countdown_tiny.py` (the default job; same
seed, same data, same model) and whose second stage is PPO instead of GRPO. Learning rates are
the default job's GRPO rate (1e-4; the paper's 1e-6 is for a 3B model) for the actor and 10x
for the critic. 32 prompts x 4 samples = 128 completions of at most 64 tokens per step, the
size of one GRPO sampling round of the default job, so the two are compared at equal
generated tokens (docs/ppo.md).

    python launch/train.py --config=configs/ppo_countdown_tiny.py --workdir=/tmp/ppo_countdown_tiny
"""

from ml_collections import ConfigDict

from configs import countdown_tiny


def get_config():
    c = countdown_tiny.get_config()
    c.pipeline.stages = "sft,ppo"
    grpo_stage = c.stages.grpo
    c.stages.grpo = ConfigDict()

    s = c.stages.ppo = ConfigDict()
    s.grpo = ConfigDict()  # rollouts: what to sample and how it is graded
    s.grpo.task = "countdown"
    s.grpo.prompts_per_step = 32
    s.grpo.group_size = 4  # rollout.n = 4
    s.grpo.max_prompt_tokens = grpo_stage.grpo.max_prompt_tokens
    s.grpo.max_new_tokens = grpo_stage.grpo.max_new_tokens
    s.grpo.temperature = 1.0
    s.grpo.top_p = 1.0
    s.grpo.epsilon_low = 0.2
    s.grpo.epsilon_high = 0.2
    s.grpo.grading_workers = 0  # Countdown grading is linear-time: no worker processes
    s.ppo = ConfigDict()
    s.ppo.kl_coef = 0.001
    s.ppo.kl_estimator = "kl"
    s.ppo.gamma = 1.0
    s.ppo.lam = 1.0
    s.ppo.value_clip = 0.5
    s.ppo.entropy_coef = 0.001
    s.ppo.ppo_epochs = 1
    s.ppo.num_minibatches = 2
    s.ppo.critic_learning_rate = 1e-3
    s.ppo.critic_warmup_steps = 0
    s.train = ConfigDict()
    s.train.num_steps = 60
    s.optim = ConfigDict()
    s.optim.learning_rate = 1e-4
    s.optim.schedule = "constant"
    s.optim.warmup_steps = 0
    s.optim.weight_decay = 0.0
    s.checkpoint = ConfigDict()
    s.checkpoint.every = 20
    s.eval = ConfigDict()
    s.eval.every = 20
    return c
