"""SRL on a CPU: RLVR alone, SRL alone and SRL -> RLVR from one warm start, on the Countdown
problems the warm-started tiny model never solves (pass@8 = 0). One command (docs/srl.md):

    python launch/train.py --config=configs/srl_countdown_tiny.py --workdir=/tmp/srl_tiny
    python -m jaxreason.train.srl_report /tmp/srl_tiny     # the results table

Stages, in one work directory:
1. `records`: Countdown instances (3 numbers in 1-20, targets 10-40): a warm-up pool (train)
   and a disjoint candidate pool for the hard split (held_out).
2. `steps_sft` (srl_steps): the solver's trajectories of the warm-up pool -> SFT records in
   both formats the model will be asked for: each SRL step instance (k = 1..N) with an empty
   monologue and the expert step, and each problem end to end (steps in <think>, expression in
   <answer>). This plays the part of the instruction-tuned base model of the paper.
3. `sft`: a tiny Llama from scratch on those records for 800 steps (a weak warm start:
   measured, it solves 4 of the 600 candidates in 8 samples, seeds 0 and 1; 400 steps solved
   none). Still too weak for a meaningful hard split: docs/srl.md.
4. `hard` (hard_split): 8 samples (T = 1) of each candidate problem from the warm start; the
   problems with no correct sample, split 70 / 30 into train / held out.
5. `steps` (srl_steps): solver trajectories of the hard train problems -> step instances
   (k = 1..N; Countdown with 3 numbers has N = 2, so the default k = 2..N would never ask for
   the first step), 10% of the trajectories kept for validation, and their problems
   (`problems.jsonl`) for the outcome-reward stages.
6. Arms, each GRPO (KL 0, clip 0.2 / 0.28, G = 8, dynamic sampling with the population-std
   filter 0.01), each followed by an end-to-end evaluation (`eval_*`, trainer `evaluate`:
   greedy accuracy and pass@1 mean over 8 samples at T = 1 on the hard held-out problems):
   - `rlvr`: outcome reward (1 solved / 0) on the hard train problems, from the warm start;
   - `srl`: the SRL task on the step instances, from the warm start (greedy mean similarity
     on the validation step instances every 10 steps);
   - `srl_rlvr`: outcome reward on the same problems, from the `srl` export.
   `eval_sft` evaluates the warm start the same way.

`--config.seed=N` changes every seed (data, init, sampling). Step counts are small for a CPU:
`--config.stages.srl.train.num_steps=...` etc. scale them.
"""

from ml_collections import ConfigDict

from configs import sft_countdown_tiny
from configs.eval.common import benchmark_section

GRPO_STEPS = 40


def _grpo(task: str, train: str, model: str, eval_data: str, *, reward: str | None,
          max_new_tokens: int, eval_new_tokens: int) -> ConfigDict:
    return ConfigDict({
        "trainer": "grpo",
        "model": {"path": model, "preset": None},  # the stage's own start model
        "tokenizer": {"train_vocab_size": 0},
        "data": {"generator": None, "train": train, "task": task},
        "grpo": {"task": task, "reward": reward, "prompts_per_step": 8, "group_size": 8,
                 "max_prompt_tokens": 224, "max_new_tokens": max_new_tokens,
                 "temperature": 1.0, "epsilon_low": 0.2, "epsilon_high": 0.28, "beta": 0.0,
                 "dynamic_sampling": True, "min_group_std": 0.01, "max_sampling_rounds": 2,
                 "grading_workers": 0},
        "train": {"num_steps": GRPO_STEPS},
        "optim": {"learning_rate": 1e-4, "schedule": "constant", "warmup_steps": 0,
                  "weight_decay": 0.0},
        "checkpoint": {"every": 20},
        "log": {"every": 5},
        "eval": {"task": task, "data": eval_data, "every": 0, "num_examples": 0,
                 "max_new_tokens": eval_new_tokens, "batch_size": 128}})


def _evaluate(model: str) -> ConfigDict:
    return ConfigDict({"trainer": "evaluate", "model": {"path": model, "preset": None},
                       "tokenizer": {"train_vocab_size": 0},
                       "suite": {"countdown_test": {"path": "stage:hard.held_out"}}})


def get_config():
    c = sft_countdown_tiny.get_config()
    c.trainer = "pipeline"
    c.pipeline.stages = ("records,steps_sft,sft,hard,steps,eval_sft,rlvr,eval_rlvr,srl,"
                         "eval_srl,srl_rlvr,eval_srl_rlvr")
    c.data.generator_options.num_train = 3000  # warm-up pool
    c.data.generator_options.num_eval = 600  # candidate pool for the hard split
    c.data.chat = True

    # End-to-end evaluation (trainer "evaluate"): greedy + 8 samples at T = 1.
    c.suite.benchmarks = "countdown_test"
    c.suite.countdown_test = benchmark_section(chat=True, max_new_tokens=64, n=8,
                                               temperature=1.0, top_p=1.0)

    c.srl.source = "countdown"
    c.srl.k_start = 1
    c.srl.k_end = 0

    c.stages.records = ConfigDict({"eval": {"data": None}})
    c.stages.steps_sft = ConfigDict({
        "trainer": "srl_steps",
        "data": {"generator": None, "train": "stage:records.train"},
        "srl": {"val_fraction": 0.0, "sft_mix": True}})
    c.stages.sft = ConfigDict({
        "data": {"generator": None, "task": None, "train": "stage:steps_sft.sft"},
        "train": {"num_steps": 800, "batch_size": 8},  # 400 solved nothing (pass@8 = 0)
        "eval": {"task": "countdown", "data": "stage:records.held_out", "num_examples": 200},
        "checkpoint": {"every": 200}})
    c.stages.hard = ConfigDict({
        "trainer": "hard_split",
        "data": {"generator": None, "train": "stage:records.held_out"},
        "sample": {"task": "countdown", "n": 8, "temperature": 1.0, "max_new_tokens": 64,
                   "batch_size": 200, "grading_workers": 0},
        "hard_split": {"max_correct": 0, "held_out_fraction": 0.3}})
    c.stages.steps = ConfigDict({
        "trainer": "srl_steps",
        "data": {"generator": None, "train": "stage:hard.train"},
        "srl": {"val_fraction": 0.1}})
    c.stages.eval_sft = _evaluate("stage:sft.model")
    c.stages.rlvr = _grpo("countdown", "stage:steps.problems", "stage:sft.model",
                          "stage:hard.held_out", reward="binary", max_new_tokens=64,
                          eval_new_tokens=64)
    c.stages.eval_rlvr = _evaluate("stage:rlvr.model")
    c.stages.srl = _grpo("srl", "stage:steps.steps", "stage:sft.model", "stage:steps.steps_val",
                         reward=None, max_new_tokens=32, eval_new_tokens=32)
    c.stages.srl.eval.every = 10  # the validation similarity curve (greedy, held-out steps)
    c.stages.eval_srl = _evaluate("stage:srl.model")
    c.stages.srl_rlvr = _grpo("countdown", "stage:steps.problems", "stage:srl.model",
                              "stage:hard.held_out", reward="binary", max_new_tokens=64,
                              eval_new_tokens=64)
    c.stages.eval_srl_rlvr = _evaluate("stage:srl_rlvr.model")
    return c
