"""A seconds-per-step DPO recipe for tests: a one-layer random model on toy pairs
(`--config.data.train` is set by the test; the tokenizer is trained on the pairs)."""

from configs import base


def get_config():
    c = base.get_config()
    c.trainer = "dpo"
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
    c.dpo.loss = "dpo_nll"
    c.dpo.beta = 0.1
    c.dpo.alpha = 1.0
    c.train.batch_size = 4
    c.train.num_steps = 30
    c.train.logprob_chunk_size = 16
    c.optim.learning_rate = 3e-3
    c.optim.schedule = "constant"
    c.checkpoint.every = 10
    c.checkpoint.max_to_keep = 2
    c.checkpoint.async_save = False
    c.checkpoint.export_hf = False
    c.log.every = 0
    c.log.progress = False
    c.log.tensorboard = False
    return c
