"""The default job: a tiny Llama learns Countdown on a CPU, SFT then GRPO (~15 minutes).

Stage 1 (`sft`) is `configs/sft_countdown_tiny.py`: from scratch, on solver-written solutions.
Stage 2 (`grpo`) starts from its export and trains with GRPO on the same instance distribution,
rewarded by the Countdown task (TinyZero: 1 solved / 0.1 well-formed / 0). Held-out accuracy
(greedy) is printed after each stage; each stage writes its own metrics.jsonl in
<workdir>/<stage>.

    python launch/train.py --config=configs/countdown_tiny.py --workdir=/tmp/countdown_tiny
"""

from ml_collections import ConfigDict

from configs import sft_countdown_tiny


def get_config():
    c = sft_countdown_tiny.get_config()
    c.trainer = "pipeline"
    c.pipeline.stages = "sft,grpo"

    g = c.stages.grpo
    g.grpo = ConfigDict()
    g.grpo.task = "countdown"
    g.grpo.prompts_per_step = 16
    g.grpo.group_size = 8
    g.grpo.max_prompt_tokens = 160
    g.grpo.max_new_tokens = 64
    g.grpo.temperature = 1.0
    g.grpo.epsilon_low = 0.2
    g.grpo.epsilon_high = 0.28
    g.grpo.dynamic_sampling = True
    g.grpo.max_sampling_rounds = 2
    g.grpo.grading_workers = 0  # Countdown grading is linear-time: no worker processes
    g.train = ConfigDict()
    g.train.num_steps = 60
    g.optim = ConfigDict()
    g.optim.learning_rate = 1e-4
    g.optim.schedule = "constant"
    g.optim.warmup_steps = 0
    g.optim.weight_decay = 0.0
    g.checkpoint = ConfigDict()
    g.checkpoint.every = 20
    g.eval = ConfigDict()
    g.eval.every = 20
    return c
