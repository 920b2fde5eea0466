"""LoRA SFT of Llama-3.1-70B-Instruct on MATH solutions on one 8-GPU host (8 x 80 GB).

Full fine-tuning of 70B needs fp32 master weights and Adam moments (~1.1 TB): a pod. With
rank-16 adapters on every projection (`model.lora`, docs/lora.md) the base is frozen and
stored in int8 (`quantization`, QLoRA-style: ~77 GB with block scales and bf16 embeddings,
dequantized one layer at a time), only the
~207M adapter parameters get gradients and Adam state (~2.5 GB in fp32), and everything is
sharded over the 8 GPUs (FSDP on `embed`). Activations are rematerialized per layer and the
80 layers run under `lax.scan`. Checkpoints hold the adapters only; the export is the merged
bf16 model plus the PEFT adapter (`<workdir>/export/adapter`).

    python launch/train.py --config=configs/sft_llama3_70b_lora_gpu.py --workdir=/runs/70b_lora \
        --config.model.path=/mnt/models/Llama-3.1-70B-Instruct \
        --config.data.train=/mnt/data/math/train.jsonl --config.eval.data=/mnt/data/math/dev.jsonl
"""

from configs import base


def get_config():
    c = base.get_config()
    c.model.path = "checkpoints/Llama-3.1-70B-Instruct"  # local HF directory (config + weights)
    c.model.dtype = "bfloat16"
    c.model.param_dtype = "float32"  # adapters and their moments; the base is int8
    c.model.remat_policy = "full"
    c.model.scan_layers = True
    c.model.lora.rank = 16
    c.model.lora.alpha = 32.0
    c.model.lora.targets = "q,k,v,o,gate,up,down"
    c.model.lora.quantization = "int8"  # "none": bf16 base (~141 GB), "nf4": ~43 GB

    c.mesh.data = 1
    c.mesh.fsdp = -1  # all 8 GPUs
    c.mesh.tensor = 1

    c.data.train = "data/math/train.jsonl"  # MATH train split (problem, solution)
    c.data.task = "math"
    c.data.chat = True
    c.data.loss_on = "completion"
    c.data.max_length = 2048
    c.data.packing = True
    c.data.num_epochs = 2

    c.train.batch_size = 32  # rows of 2048 positions: ~65k tokens per step
    c.train.num_microbatches = 4  # 8 rows per micro-batch: one per GPU
    c.train.num_steps = 0  # two epochs (counted from the data)
    c.train.logprob_chunk_size = 512

    c.optim.learning_rate = 1e-4  # a LoRA rate (full fine-tuning of 70B uses ~1e-5)
    c.optim.schedule = "cosine"
    c.optim.warmup_steps = 20
    c.optim.final_lr_ratio = 0.1
    c.optim.weight_decay = 0.0
    c.optim.grad_clip = 1.0

    c.checkpoint.every = 100
    c.checkpoint.max_to_keep = 3
    c.checkpoint.export_dtype = "bfloat16"

    c.eval.task = "math"
    c.eval.max_new_tokens = 1024
    c.eval.batch_size = 64
    return c
