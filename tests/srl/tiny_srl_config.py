"""A seconds-per-step SRL recipe for tests: GRPO with the SRL task on Countdown step instances
(`--config.data.train` and `--config.eval.data` are set by the test), a one-layer model and a
small BPE tokenizer trained on the prompts."""

from configs import base


def get_config():
    c = base.get_config()
    c.trainer = "grpo"
    c.seed = 0
    c.model.preset = "llama-tiny"
    c.model.overrides.hidden_size = 32
    c.model.overrides.intermediate_size = 64
    c.model.overrides.num_layers = 1
    c.model.overrides.num_heads = 2
    c.model.overrides.num_kv_heads = 1
    c.model.overrides.head_dim = 16
    c.tokenizer.train_vocab_size = 320
    c.data.task = "srl"
    c.grpo.task = "srl"
    c.grpo.prompts_per_step = 4
    c.grpo.group_size = 4
    c.grpo.max_prompt_tokens = 256
    c.grpo.max_new_tokens = 8
    c.grpo.beta = 0.0
    c.grpo.dynamic_sampling = True
    c.grpo.min_group_std = 0.01
    c.grpo.max_sampling_rounds = 2
    c.grpo.grading_workers = 0
    c.train.num_steps = 2
    c.train.logprob_chunk_size = 64
    c.optim.learning_rate = 1e-3
    c.optim.schedule = "constant"
    c.checkpoint.every = 10
    c.checkpoint.export_hf = False
    c.eval.max_new_tokens = 8
    c.eval.batch_size = 8
    c.eval.grading_workers = 0
    c.log.every = 0
    c.log.progress = False
    c.log.tensorboard = False
    return c
