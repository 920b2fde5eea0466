"""A seconds-per-step GRPO recipe for tests: a one-layer model learns the toy letters task
(`--config.data.train` and `--config.tokenizer.path` are set by the test)."""

from configs import base


def get_config():
    c = base.get_config()
    c.trainer = "grpo"
    c.model.preset = "llama-tiny"
    c.model.overrides.hidden_size = 32
    c.model.overrides.intermediate_size = 64
    c.model.overrides.num_layers = 1
    c.model.overrides.num_heads = 2
    c.model.overrides.num_kv_heads = 1
    c.model.overrides.head_dim = 16
    c.data.add_bos = True
    c.grpo.reward_fn = "toy_letters:reward"
    c.grpo.prompts_per_step = 8
    c.grpo.group_size = 8
    c.grpo.max_prompt_tokens = 4
    c.grpo.max_new_tokens = 1  # the answer is one token
    c.train.num_steps = 80
    c.train.logprob_chunk_size = 8
    c.optim.learning_rate = 1e-2
    c.optim.schedule = "constant"
    c.optim.b2 = 0.99
    c.checkpoint.every = 5
    c.checkpoint.max_to_keep = 2
    c.log.every = 0
    c.log.progress = False
    return c
