"""SFT of a tiny Llama, trained from scratch on solver-written Countdown solutions (CPU, minutes).

Countdown instances (3 numbers in 1-20, targets 10-40) come from the task's seeded generator;
each completion is the solver's steps in `<think>` and the expression in `<answer>`, after the
task's chat prompt (the question as a user turn). A byte-level BPE tokenizer is trained on these
texts at start-up (1024 tokens: every number up to a few hundred is one token, the same one in
the prompt and the steps). At the end the model answers 200 held-out instances greedily and the
Countdown task grades them.

    python launch/train.py --config=configs/sft_countdown_tiny.py --workdir=/tmp/sft_tiny
"""

from configs import base


def get_config():
    c = base.get_config()
    base.use_tiny_llama(c)

    c.data.generator = "countdown"
    c.data.generator_options.num_train = 20000
    c.data.generator_options.num_eval = 200
    c.data.generator_options.num_numbers = (3, 3)
    c.data.generator_options.number_range = (1, 20)
    c.data.generator_options.target_range = (10, 40)
    c.data.task = "countdown"
    c.data.chat = True
    c.data.max_length = 392  # three ~130-token examples per row
    c.data.packing = True

    c.train.batch_size = 8
    c.train.num_steps = 800  # about one epoch of the 20k instances
    c.optim.learning_rate = 3e-3
    c.optim.warmup_steps = 30
    c.optim.weight_decay = 0.01
    c.optim.final_lr_ratio = 0.1

    c.checkpoint.every = 200
    c.log.every = 50
    c.eval.task = "countdown"
    c.eval.max_new_tokens = 64
    c.eval.batch_size = 200
    c.eval.grading_workers = 0  # the Countdown grader is linear-time: grade in-process
    return c
