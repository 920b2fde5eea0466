"""The cognitive-behaviors priming study (Gandhi et al. 2025; ALGORITHMS.md 4.3, 4.7) as one
trainer: arms -> one pipeline per seed -> the report.

The paper primes one base model by SFT on Countdown traces that show chosen reasoning
behaviors (or controls: no behaviors, an empty or a placeholder thought, wrong answers), then
runs the same RL on every primed model and compares accuracy and behavior counts. Here each
seed is one pipeline (`jaxreason.train.pipeline`) in `<workdir>/seed_<s>`:

    records, tokenizer, base, prime_<arm>, rl_<arm>, prime_<arm>, rl_<arm>, ...

(the first three are the recipe's `shared_stages`: run once, before the arms)

- `records` (data stage): the RL problems and the held-out problems every stage grades;
- `tokenizer` (`behavior_tokenizer`, below): one BPE for every arm, trained on the base corpus
  and on traces of every arm, so that no arm's words cost more tokens than another's;
- `base`: the starting model of every arm (SFT from scratch on `countdown_attempts`: one random
  legal attempt per problem and its answer, arithmetic and format without any behavior);
- `prime_<arm>`: SFT of `base` on the arm's priming records (`countdown_traces`);
- `rl_<arm>`: `rl_trainer` ("grpo"; "ppo" once registered) from `prime_<arm>` with the TinyZero
  reward (1 / 0.1 / 0), greedy held-out accuracy at step 0 and every `eval.every` steps.

The recipe (`configs/behaviors_countdown_tiny.py`) writes the stage sections of every arm;
`arms` picks which run (in that order), `seeds` which seeds. Finished stages are skipped and
interrupted ones resume (the pipeline's rules), so an arm re-runs alone with `--config.arms=`
and a killed study continues where it stopped. At the end `priming_report.write_report`
writes the tables and figures of whatever has run.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from typing import Any

from ml_collections import ConfigDict

from jaxreason.train.data_stages import _finish, _is_writer, finished, write_json
from jaxreason.train.errors import ConfigError

log = logging.getLogger(__name__)

RL_TRAINERS = ("grpo", "ppo")


def parse_arms(config: Any) -> list[str]:
    """The arms of `config.arms` (comma-separated), each with its stage sections."""
    from jaxreason.data.countdown_traces import ARMS

    arms = [a.strip() for a in str(config.arms).split(",") if a.strip()]
    if not arms:
        raise ConfigError(f"arms: empty; choose from {sorted(ARMS)}")
    for arm in arms:
        if arm not in ARMS:
            raise ConfigError(f"arms: {arm!r} is not an arm; known: {sorted(ARMS)}")
        for stage in (f"prime_{arm}", f"rl_{arm}"):
            if stage not in config.stages:
                raise ConfigError(f"arms: {arm!r} has no section stages.{stage} in the recipe")
    if len(set(arms)) != len(arms):
        raise ConfigError(f"arms: {config.arms!r} names an arm twice")
    return arms


def parse_seeds(config: Any) -> list[int]:
    """`config.seeds` ("0,1"), or `[config.seed]` when it is empty."""
    text = str(config.seeds or "").strip()
    if not text:
        return [int(config.seed)]
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"seeds: {config.seeds!r} is not a comma-separated list of integers"
                          ) from None
    if len(set(seeds)) != len(seeds) or not seeds:
        raise ConfigError(f"seeds: {config.seeds!r}: give each seed once")
    return seeds


def check_rl_trainer(config: Any) -> str:
    from jaxreason.train import trainer_names

    name = config.rl_trainer
    if name not in RL_TRAINERS:
        raise ConfigError(f"rl_trainer: {name!r} is not one of {RL_TRAINERS}")
    if name not in trainer_names():
        raise ConfigError(f"rl_trainer: {name!r} is not a registered trainer here "
                          f"(registered: {trainer_names()})")
    return name


def study_pipeline(config: ConfigDict, arms: list[str], seed: int) -> ConfigDict:
    """The pipeline config of one seed: the recipe with the stages of `arms`."""
    rl = check_rl_trainer(config)
    c = ConfigDict(config.to_dict(), type_safe=True)
    c.trainer = "pipeline"
    c.seed = seed
    shared = [s.strip() for s in str(config.shared_stages or "").split(",") if s.strip()]
    c.pipeline.stages = ",".join(shared + [f"{s}_{arm}" for arm in arms
                                           for s in ("prime", "rl")])
    for arm in arms:
        c.stages[f"rl_{arm}"].trainer = rl
    return c


def train(config: ConfigDict, workdir: str) -> dict[str, Any]:
    """Run the study (trainer "priming_study"); returns {seed_<s>: pipeline summary, report}."""
    from jaxreason.train import pipeline
    from jaxreason.train.priming_report import write_report

    arms, seeds = parse_arms(config), parse_seeds(config)
    configs = {seed: study_pipeline(config, arms, seed) for seed in seeds}  # check all first
    for c in configs.values():
        pipeline.validate(c, pipeline.parse_stages(c.pipeline.stages))
    os.makedirs(workdir, exist_ok=True)
    out: dict[str, Any] = {}
    for seed, c in configs.items():
        seed_dir = os.path.join(workdir, f"seed_{seed}")
        print(f"[priming study] seed {seed}: arms {arms} in {seed_dir}", flush=True)
        out[f"seed_{seed}"] = summary = pipeline.train(c, seed_dir)
        if any(s.get("status") == "preempted" for s in summary.values()):
            return out
        if _is_writer():  # merged: studies of other arms may share this seed's directory
            path = os.path.join(seed_dir, "priming_sets.json")
            stats = {}
            if os.path.exists(path):
                with open(path) as f:
                    stats = json.load(f)
            write_json(path, {**stats, **priming_set_stats(c, arms)})
    if _is_writer():
        out["report"] = write_report(workdir)
    return out


# ----------------------------------------------------------------------------- data

def priming_set_stats(config: ConfigDict, arms: list[str]) -> dict[str, Any]:
    """Per arm, what its priming records hold: count, share whose answer reaches the target
    (the Countdown task's grade), mean behavior counts (the classifier, given the target) and
    mean completion characters."""
    from jaxreason import behaviors, tasks
    from jaxreason.data import synthetic

    task = tasks.get("countdown")
    stats = {}
    for arm in arms:
        stage = config.stages[f"prime_{arm}"]
        options = {**config.data.generator_options.to_dict(),
                   **stage.data.generator_options.to_dict()}
        records, _ = synthetic.generate(stage.data.generator, options, int(config.seed))
        counts = [behaviors.count(r["completion"], "countdown", target=r["target"])
                  for r in records]
        stats[arm] = {"num_records": len(records),
                      "answer_accuracy": sum(task.grade(r, r["completion"]).correct
                                             for r in records) / max(len(records), 1),
                      "completion_chars": sum(len(r["completion"]) for r in records)
                      / max(len(records), 1),
                      **behaviors.average(counts)}
    return stats


def behavior_tokenizer(config: Any, workdir: str) -> dict[str, Any]:
    """Data stage: a byte-level BPE (`tokenizer.train_vocab_size`) trained on the base corpus
    (`data.generator`, `data.generator_options`) and on traces of every arm of
    `countdown_traces`, so the words of any arm are whole tokens."""
    done = finished(workdir)
    if done is not None:
        return done
    from jaxreason.data import synthetic
    from jaxreason.data.countdown_traces import ARMS
    from jaxreason.tokenizer import train_bpe_tokenizer

    options = config.data.generator_options.to_dict()
    base, _ = synthetic.generate(config.data.generator, options, int(config.seed))
    texts = [f"{r['prompt']}{r['completion']}" for r in base]
    per_arm = max(len(base) // (2 * len(ARMS)), 50)
    for arm in ARMS:
        traces, _ = synthetic.generate("countdown_traces",
                                       {**options, "arm": arm, "num_train": per_arm},
                                       int(config.seed) + 17)
        texts += [r["completion"] for r in traces]
    random.Random(config.seed).shuffle(texts)
    path = os.path.join(workdir, "tokenizer")
    if _is_writer():
        tokenizer = train_bpe_tokenizer(texts, int(config.tokenizer.train_vocab_size) or 1024)
        if os.path.exists(path):
            shutil.rmtree(path)
        tokenizer.save_pretrained(path)
    return _finish(workdir, {"status": "completed", "outputs": {"tokenizer": path},
                             "num_texts": len(texts)})


behavior_tokenizer.outputs = ("tokenizer",)  # type: ignore[attr-defined]
