"""A seconds-per-step reward-model recipe for tests: a one-layer random model on toy records
(`--config.data.train` is set by the test; the tokenizer is trained on the records)."""

from configs import base


def get_config():
    c = base.get_config()
    c.trainer = "reward_model"
    c.model.preset = "llama-tiny"
    c.model.overrides.hidden_size = 32
    c.model.overrides.intermediate_size = 64
    c.model.overrides.num_layers = 1
    c.model.overrides.num_heads = 2
    c.model.overrides.num_kv_heads = 1
    c.model.overrides.head_dim = 16
    c.tokenizer.train_vocab_size = 300
    c.mesh.fsdp = -1
    c.data.max_length = 64
    c.data.packing = True
    c.reward_model.kind = "prm"
    c.reward_model.head_std = 0.02
    c.train.batch_size = 8
    c.train.num_steps = 40
    c.optim.learning_rate = 3e-3
    c.optim.schedule = "constant"
    c.checkpoint.every = 20
    c.checkpoint.max_to_keep = 2
    c.checkpoint.async_save = False
    c.checkpoint.export_hf = True
    c.log.every = 0
    c.log.progress = False
    c.log.tensorboard = False
    return c
