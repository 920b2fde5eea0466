"""A seconds-long SFT recipe for launcher tests: a one-layer model on arithmetic records
(`--config.data.train=<jsonl>` is set by the test)."""

from configs import base


def get_config():
    c = base.get_config()
    c.model.preset = "llama-tiny"
    c.model.overrides.hidden_size = 32
    c.model.overrides.intermediate_size = 64
    c.model.overrides.num_layers = 1
    c.model.overrides.num_heads = 2
    c.model.overrides.num_kv_heads = 1
    c.model.overrides.head_dim = 16
    c.tokenizer.train_vocab_size = 300
    c.data.max_length = 32
    c.data.packing = True
    c.train.batch_size = 4
    c.train.num_steps = 40
    c.train.logprob_chunk_size = 16
    c.optim.learning_rate = 1e-3
    c.optim.warmup_steps = 2
    c.checkpoint.every = 4
    c.checkpoint.max_to_keep = 2
    c.log.every = 0
    c.log.progress = False
    c.log.data_order = True
    return c
