"""ASTRO on Countdown at CPU scale: search -> procedure cloning -> SFT -> GRPO, ASTRO vs Direct.

One command runs the whole comparison (docs/astro.md):

    python launch/train.py --config=configs/astro_countdown_tiny.py --workdir=/tmp/astro_tiny

Stages (each in <workdir>/<stage>):
1. `step_data`: Countdown-3 instances (train / held-out), warm-up SFT records with one step per
   line (half the solver's solutions, half random legal step sequences, so the policy writes
   legal steps without solving everything) and a 1024-token BPE trained on them and on
   ASTRO's fixed phrases.
2. `warmup`: SFT of a tiny Llama (4 layers, d=128) from scratch on the warm-up records.
3. `search`: step-level MCTS with the warm-up policy on training instances (k=4 candidates,
   M=4 rollouts, 16 iterations, depth 4, c_puct 1, +1/-1 reward).
4. `clone`: per valid tree 1 k=0 trace + 3 traces with k from {0,1,2} (ASTRO arm), and the
   Direct trace of the same correct terminal for each (Direct arm: same count, same problems).
5. `sft_astro` / `sft_direct`: SFT of the warm-up model on each arm (loss on all tokens, the
   same epochs), then `grpo_astro` / `grpo_direct`: GRPO from each SFT model (G=4, +1/-1).
Every model stage reports greedy accuracy on the same 200 held-out instances; the behaviors
counter and the backtrack count per answer come from each stage's eval/step_*/items.jsonl
(`python launch/astro_report.py <workdir>`).
"""

from ml_collections import ConfigDict

from configs import sft_countdown_tiny

HELD_OUT = "stage:step_data.held_out"


def _model_stage(**sections) -> ConfigDict:
    stage = ConfigDict({"eval": {"data": HELD_OUT}})
    for key, value in sections.items():
        stage[key] = ConfigDict(value) if isinstance(value, dict) else value
    return stage


def get_config(variant: str = ""):
    """variant "from_model": skip the warm-up and start from an existing Countdown SFT model
    (`--config.model.path=<its export>`, e.g. the `sft` stage of configs/countdown_tiny.py,
    whose steps sit between <think> lines: search depth 6)."""
    c = sft_countdown_tiny.get_config()
    c.trainer = "pipeline"
    c.seed = 0
    c.pipeline.stages = ("step_data,warmup,search,clone,sft_astro,sft_direct,grpo_astro,"
                         "grpo_direct")
    c.data.generator_options.num_train = 4000
    c.data.generator_options.num_eval = 200
    c.data.max_length = 512
    c.eval.max_new_tokens = 192  # room for reflections and backtracks
    c.eval.batch_size = 200

    c.step_data.random_share = 0.5
    c.search.task = "countdown"
    c.search.reward = "astro"
    c.search.k = 4
    c.search.rollouts = 4
    c.search.iterations = 16
    c.search.max_depth = 4
    c.search.c_puct = 1.0
    c.search.delimiter = "\n"
    c.search.max_step_tokens = 16
    c.search.max_rollout_tokens = 48
    c.search.num_problems = 256
    c.search.batch_size = 64
    c.search.grading_workers = 0
    c.clone.trees = None
    c.clone.num_direct = 1
    c.clone.num_search = 3
    c.clone.ks = "0,1,2"

    from_records = {"generator": None, "task": None}
    c.stages.step_data = ConfigDict()
    c.stages.warmup = _model_stage(
        trainer="sft",
        data={**from_records, "train": "stage:step_data.warmup"},
        tokenizer={"path": "stage:step_data.tokenizer", "train_vocab_size": 0},
        train={"num_steps": 400})
    c.stages.search = ConfigDict({"data": {"generator": None, "task": "countdown",
                                           "train": "stage:step_data.train"}})
    c.stages.clone = ConfigDict({"clone": {"trees": "stage:search.trees"}})
    for arm in ("astro", "direct"):
        c.stages[f"sft_{arm}"] = _model_stage(
            trainer="sft",
            model={"path": "stage:warmup.model"},
            data={**from_records, "train": f"stage:clone.{arm}", "loss_on": "all",
                  "num_epochs": 3},
            train={"num_steps": 0},  # num_epochs passes over the arm's records
            optim={"learning_rate": 1e-3, "warmup_steps": 10})
        c.stages[f"grpo_{arm}"] = _model_stage(
            trainer="grpo",
            model={"path": f"stage:sft_{arm}.model"},
            data={"generator": None, "task": "countdown", "train": "stage:step_data.train"},
            grpo={"task": "countdown", "reward": "astro", "prompts_per_step": 16,
                  "group_size": 4, "max_prompt_tokens": 160, "max_new_tokens": 192,
                  "temperature": 1.0, "epsilon_low": 0.2, "epsilon_high": 0.28,
                  "grading_workers": 0},
            train={"num_steps": 40},
            optim={"learning_rate": 1e-4, "schedule": "constant", "warmup_steps": 0,
                   "weight_decay": 0.0},
            checkpoint={"every": 10},
            eval={"data": HELD_OUT, "every": 10})
    if variant == "from_model":
        c.pipeline.stages = ("step_data,search,clone,sft_astro,sft_direct,grpo_astro,"
                             "grpo_direct")
        c.model.preset = None
        c.tokenizer.train_vocab_size = 0  # the model's own tokenizer
        c.model.path = "/checkpoints/countdown_tiny/sft/export"  # set on the command line
        del c.stages["warmup"]
        c.search.max_depth = 6  # <think>, two steps, </think>, <answer>
        c.eval.max_new_tokens = 256
        c.data.max_length = 640
        for arm in ("astro", "direct"):
            # both arms from the given model (not from the other arm's export)
            del c.stages[f"sft_{arm}"]["model"]
            c.stages[f"sft_{arm}"].pipeline = ConfigDict({"inherit_model": False})
            c.stages[f"grpo_{arm}"].grpo.max_new_tokens = 256
    elif variant:
        raise ValueError(f"unknown variant {variant!r} (known: from_model)")
    return c
