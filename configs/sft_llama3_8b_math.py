"""SFT of Llama-3.1-8B-Instruct on MATH training solutions (a TPU pod or a multi-GPU host).

The model and its tokenizer come from a local Hugging Face directory; MATH records
(`problem`, `solution`) become chat prompts and solution completions through the "math" task.
bf16 compute with fp32 master weights and optimizer state, parameters and moments sharded
over all devices (FSDP), activations rematerialized per layer, layers under `lax.scan`.
Held-out accuracy on the MATH dev split is graded at the end.

    python launch/train.py --config=configs/sft_llama3_8b_math.py --workdir=gs://.../run1 \
        --config.model.path=/mnt/models/Llama-3.1-8B-Instruct \
        --config.data.train=/mnt/data/math/train.jsonl --config.eval.data=/mnt/data/math/dev.jsonl

On a multi-host pod add `--config.distributed.auto=True` (every host runs the same command).
"""

from configs import base


def get_config():
    c = base.get_config()
    c.model.path = "checkpoints/Llama-3.1-8B-Instruct"  # local HF directory (config + weights)
    c.model.dtype = "bfloat16"
    c.model.param_dtype = "float32"
    c.model.remat_policy = "dots_no_batch"
    c.model.scan_layers = True

    c.mesh.data = 1
    c.mesh.fsdp = -1
    c.mesh.tensor = 1

    c.data.train = "data/math/train.jsonl"  # MATH train split (problem, solution)
    c.data.task = "math"
    c.data.chat = True
    c.data.loss_on = "completion"
    c.data.max_length = 2048
    c.data.packing = True
    c.data.num_epochs = 3

    c.train.batch_size = 64  # rows of 2048 positions: ~131k tokens per step
    c.train.num_microbatches = 1
    c.train.num_steps = 0  # three epochs (counted from the data)
    c.train.logprob_chunk_size = 512

    c.optim.learning_rate = 1e-5
    c.optim.schedule = "cosine"
    c.optim.warmup_steps = 20
    c.optim.final_lr_ratio = 0.1
    c.optim.weight_decay = 0.0
    c.optim.grad_clip = 1.0

    c.checkpoint.every = 100
    c.checkpoint.max_to_keep = 2
    c.checkpoint.export_dtype = "bfloat16"

    c.eval.task = "math"
    # c.eval.data: the MATH dev split (problem, solution) to grade at the end; unset = no eval
    c.eval.max_new_tokens = 1024
    c.eval.batch_size = 64
    return c
