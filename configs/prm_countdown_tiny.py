"""A process reward model from search trees on Countdown (CPU scale): trees -> PRM -> step
beam search against best-of-N at matched tokens (docs/reward_models.md).

    python launch/train.py --config=configs/prm_countdown_tiny.py:from_model \
      --workdir=/tmp/prm_tiny --config.model.path=<a Countdown SFT export>

Stages (each in <workdir>/<stage>):
1. `step_data`: Countdown-3 instances (train / held-out), as in configs/astro_countdown_tiny.py.
2. `warmup` (the default variant only): SFT of a tiny Llama on one-step-per-line solutions.
3. `search`: step-level MCTS with the policy on training instances (k=4 candidates, M=4
   rollouts, +1/-1 reward): every node's Q is the backed-up mean reward of what was searched
   below it.
4. `prm_labels`: one record per root-to-leaf path, each step labelled with its soft success
   rate p = (Q + 1) / 2 (a terminal: its grade); 20% of the trees (by id) are held out.
5. `prm`: the reward_model trainer (kind prm): the policy's transformer under a zero scalar
   head, per-step BCE at each step's last token, 3 epochs.
6. `rm_eval`: the AUC of the PRM on the held-out trees' solutions (aggregations last / min /
   product) and steps; then on 100 held-out problems best-of-N (N = 4, 8, 16) scored by the
   PRM against step beam search with the PRM (2x2, 4x4), with their generated tokens.

Variant `from_model`: no warm-up; search, PRM and beam search start from `model.path` (e.g.
the `sft` stage of configs/countdown_tiny.py, whose steps sit between `<think>` lines: search
depth 6).
"""

from ml_collections import ConfigDict

from configs import sft_countdown_tiny

HELD_OUT = "stage:step_data.held_out"


def get_config(variant: str = ""):
    c = sft_countdown_tiny.get_config()
    c.trainer = "pipeline"
    c.seed = 0
    c.pipeline.stages = "step_data,warmup,search,prm_labels,prm,rm_eval"
    c.data.generator_options.num_train = 4000
    c.data.generator_options.num_eval = 200
    c.data.max_length = 512
    c.eval.max_new_tokens = 96
    c.eval.batch_size = 200

    c.step_data.random_share = 0.5
    c.search.task = "countdown"
    c.search.reward = "astro"  # +1 / -1: p = (Q + 1) / 2
    c.search.k = 4
    c.search.rollouts = 4
    c.search.iterations = 12
    c.search.max_depth = 4
    c.search.c_puct = 1.0
    c.search.delimiter = "\n"
    c.search.max_step_tokens = 16
    c.search.max_rollout_tokens = 48
    c.search.num_problems = 128
    c.search.batch_size = 64
    c.search.max_leaves_per_call = 16  # the fastest call size on CPU (docs/astro.md)
    c.search.grading_workers = 0

    c.prm_labels.trees = None
    c.prm_labels.labels = "soft"
    c.prm_labels.value = "q"
    c.prm_labels.paths = "leaves"
    c.prm_labels.held_out_share = 0.2

    c.reward_model.kind = "prm"
    c.reward_model.aggregation = "last"
    c.reward_model.delimiter = "\n"

    c.rm_eval.num_problems = 100
    c.rm_eval.ns = "4,8,16"
    c.rm_eval.beams = "2x2,4x4"
    c.rm_eval.beam_rounds = 8
    c.rm_eval.step_tokens = 16
    c.rm_eval.max_new_tokens = 96
    c.rm_eval.temperature = 1.0

    from_records = {"generator": None, "task": None}
    c.stages.step_data = ConfigDict()
    c.stages.warmup = ConfigDict({
        "trainer": "sft", "eval": {"data": HELD_OUT},
        "data": {**from_records, "train": "stage:step_data.warmup"},
        "tokenizer": {"path": "stage:step_data.tokenizer", "train_vocab_size": 0},
        "train": {"num_steps": 800}})
    c.stages.search = ConfigDict({"data": {"generator": None, "task": "countdown",
                                           "train": "stage:step_data.train"}})
    c.stages.prm_labels = ConfigDict({"prm_labels": {"trees": "stage:search.trees"}})
    c.stages.prm = ConfigDict({
        "trainer": "reward_model",
        "data": {**from_records, "train": "stage:prm_labels.steps", "num_epochs": 3},
        "train": {"num_steps": 0, "batch_size": 8},  # num_epochs passes over the paths
        "optim": {"learning_rate": 3e-4, "warmup_steps": 10, "weight_decay": 0.0},
        "checkpoint": {"every": 100}})
    c.stages.rm_eval = ConfigDict({
        "rm_eval": {"reward_model": "stage:prm.model",
                    "steps": "stage:prm_labels.steps_held_out"},
        "model": {"path": "stage:warmup.model"},  # the policy, not the PRM exported before
        "eval": {"data": HELD_OUT, "task": "countdown"}})
    if variant == "from_model":
        c.pipeline.stages = "step_data,search,prm_labels,prm,rm_eval"
        c.model.preset = None
        c.tokenizer.train_vocab_size = 0  # the model's own tokenizer
        c.model.path = "/checkpoints/countdown_tiny/sft/export"  # set on the command line
        del c.stages["warmup"]
        c.search.max_depth = 6  # <think>, two steps, </think>, <answer>
        c.rm_eval.beam_rounds = 8
        del c.stages.rm_eval["model"]
        c.stages.rm_eval.pipeline = ConfigDict({"inherit_model": False})  # model.path
    elif variant:
        raise ValueError(f"unknown variant {variant!r} (known: from_model)")
    return c
