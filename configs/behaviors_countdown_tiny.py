"""Cognitive behaviors at CPU scale: prime one tiny base model with Countdown traces that show
chosen reasoning behaviors (or controls), then run the same RL on every arm
(docs/behaviors_priming.md).

    python launch/train.py --config=configs/behaviors_countdown_tiny.py --workdir=/tmp/priming
    python launch/train.py --config=configs/behaviors_countdown_tiny.py --workdir=/tmp/priming \
        --config.arms=all,none --config.seeds=0,1        # a subset, two seeds
    python launch/priming_report.py --workdir=/tmp/priming  # tables and PNGs again

Per seed, in <workdir>/seed_<s> (trainer `priming_study`, jaxreason/train/priming_study.py):
1. `records`: 3-number Countdown problems (numbers 1-20, targets 10-40): RL prompts and 128
   held-out problems every model is graded on;
2. `tokenizer`: a 1024-token BPE on the base corpus and on traces of every arm;
3. `base`: a tiny Llama (4 layers, d=128) from scratch (1,000 steps) on one random legal
   attempt per problem and its answer: arithmetic and the answer format, no behavior, ~chance
   accuracy (3.1% / 0.8% held-out for seeds 0 / 1; the "Llama-3.2-3B" of the paper: the same
   starting model for every arm; 400 steps or fewer do not learn to copy the numbers);
4. per arm: `prime_<arm>`: SFT of `base` on 500 priming records of the arm (the same problems
   for every arm, `countdown_traces`), 8 epochs (2 leave the long-trace arms writing unreadable
   text); `rl_<arm>`: `rl_trainer` from it (GRPO here: 4 prompts x 8 samples per step, T=1,
   TinyZero reward 1 / 0.1 / 0, 32 steps for every arm), greedy held-out accuracy and behavior
   counts every 8 steps.

These defaults are what docs/behaviors_priming.md measured for the six main arms and two seeds
(one process per seed on one core each: base 31 min, then 5-7 min per arm). The paper's budget
is ~250 PPO steps of 256 prompts x 4 samples (configs/behaviors_llama32_3b.py); scale with
`--config.stages.<stage>.train.num_steps`.

Arms (`jaxreason.data.countdown_traces.ARMS`): all, backtracking, backtracking_verification,
backtracking_subgoal, backtracking_backward, none (the solution's steps only), empty
(`<think> </think>`), dots (length-matched placeholder), incorrect (all behaviors, wrong answers).
"""

from ml_collections import ConfigDict

from configs import base as base_config

ARMS = ("all", "backtracking", "backtracking_verification", "backtracking_subgoal",
        "backtracking_backward", "none", "empty", "dots", "incorrect")
MAIN_ARMS = "all,backtracking,none,empty,incorrect"
HELD_OUT = "stage:records.held_out"


def _prime(arm: str, epochs: int) -> ConfigDict:
    return ConfigDict({
        "trainer": "sft",
        "model": {"path": "stage:base.model"},  # every arm from the same base model
        "data": {"generator": "countdown_traces", "task": None,
                 "generator_options": {"arm": arm, "num_train": 500}, "num_epochs": epochs},
        "train": {"num_steps": 0},  # num_epochs passes over the arm's records
        "optim": {"learning_rate": 1e-3, "warmup_steps": 10, "weight_decay": 0.01,
                  "final_lr_ratio": 0.1},
        "eval": {"task": None},  # the RL stage grades the primed model at its step 0
        "checkpoint": {"every": 100}})


def _rl(arm: str, steps: int) -> ConfigDict:
    return ConfigDict({
        "trainer": "grpo",  # set from `rl_trainer` by the study
        "model": {"path": f"stage:prime_{arm}.model"},
        "data": {"generator": None, "task": "countdown", "train": "stage:records.train"},
        "grpo": {"task": "countdown", "reward": "tinyzero", "prompts_per_step": 4,
                 "group_size": 8, "max_prompt_tokens": 160, "max_new_tokens": 192,
                 "temperature": 1.0, "epsilon_low": 0.2, "epsilon_high": 0.28, "beta": 0.0,
                 "grading_workers": 0},
        "train": {"num_steps": steps},
        "optim": {"learning_rate": 1e-4, "schedule": "constant", "warmup_steps": 0,
                  "weight_decay": 0.0},
        "checkpoint": {"every": 4},
        "log": {"every": 4},
        "eval": {"task": "countdown", "data": HELD_OUT, "every": 8, "num_examples": 0}})


def get_config():
    c = base_config.get_config()
    c.trainer = "priming_study"
    c.arms = ",".join(ARMS)  # arms to run, in order (see the docstring)
    c.seeds = "0"  # seeds, comma-separated: one pipeline per seed in <workdir>/seed_<s>
    c.rl_trainer = "grpo"  # RL after priming: grpo | ppo
    c.shared_stages = "records,tokenizer,base"  # stages every arm shares, run before the arms

    base_config.use_tiny_llama(c)

    c.data.generator = "countdown"
    c.data.generator_options.num_train = 4000
    c.data.generator_options.num_eval = 128
    c.data.generator_options.num_numbers = (3, 3)
    c.data.generator_options.number_range = (1, 20)
    c.data.generator_options.target_range = (10, 40)
    c.data.chat = False  # TinyZero's base prompt, ending in "<think>"
    c.data.max_length = 600  # two priming examples (prompt ~134 + trace <= 170 tokens) per row
    c.data.packing = True
    c.train.batch_size = 8

    c.eval.task = "countdown"
    c.eval.max_new_tokens = 192
    c.eval.batch_size = 128
    c.eval.grading_workers = 0
    c.log.every = 50
    c.log.tensorboard = False

    c.stages.records = ConfigDict({"eval": {"task": None}})
    c.stages.tokenizer = ConfigDict({"trainer": "behavior_tokenizer",
                                     "data": {"generator": "countdown_attempts"}})
    c.stages.base = ConfigDict({
        "trainer": "sft",
        "tokenizer": {"path": "stage:tokenizer.tokenizer", "train_vocab_size": 0},
        "data": {"generator": "countdown_attempts", "task": None},
        "train": {"num_steps": 1000},
        "optim": {"learning_rate": 3e-3, "warmup_steps": 30, "weight_decay": 0.01,
                  "final_lr_ratio": 0.1},
        "eval": {"data": HELD_OUT},
        "checkpoint": {"every": 100}})
    for arm in ARMS:
        c.stages[f"prime_{arm}"] = _prime(arm, epochs=8)
        c.stages[f"rl_{arm}"] = _rl(arm, steps=32)
    return c
