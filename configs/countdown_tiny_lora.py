"""The default job with a LoRA GRPO stage: SFT from scratch, then GRPO on adapters only (CPU).

Stage 1 (`sft`) is the default job's (`configs/countdown_tiny.py`): a tiny Llama trained from
scratch, every parameter (LoRA on a random base would learn nothing useful). Stage 2 (`grpo`)
loads the SFT export as a frozen base and trains rank-16 adapters on every projection
(`model.lora`, docs/lora.md): the GRPO reference (when `grpo.beta > 0`) is that base itself,
the sampler runs base + adapters unmerged, checkpoints hold the adapters, and the export is the
merged model plus a PEFT adapter in `<workdir>/grpo/export/adapter`.

    python launch/train.py --config=configs/countdown_tiny_lora.py --workdir=/tmp/countdown_lora
"""

from ml_collections import ConfigDict

from configs import countdown_tiny


def get_config():
    c = countdown_tiny.get_config()
    g = c.stages.grpo
    g.model = ConfigDict()
    g.model.lora = ConfigDict()
    g.model.lora.rank = 16
    g.model.lora.alpha = 32.0
    g.model.lora.targets = "q,k,v,o,gate,up,down"
    g.optim.learning_rate = 1e-3  # adapters start at zero and want a larger step than 1e-4
    return c
