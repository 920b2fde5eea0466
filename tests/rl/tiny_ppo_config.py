"""A seconds-per-step PPO recipe for tests: the toy letters task of `tiny_grpo_config.py` with
an actor and a critic (`--config.data.train` and `--config.tokenizer.path` are set by the
test)."""

import tiny_grpo_config


def get_config():
    c = tiny_grpo_config.get_config()
    c.trainer = "ppo"
    c.ppo.kl_coef = 0.0  # a random preset has no reference checkpoint
    c.optim.learning_rate = 3e-3  # actor (GRPO's 1e-2 collapses a prompt onto a wrong answer)
    c.ppo.critic_learning_rate = 1e-2
    c.ppo.entropy_coef = 0.01
    c.ppo.ppo_epochs = 2
    c.ppo.num_minibatches = 2
    return c
