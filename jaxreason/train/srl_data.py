"""SRL data stages: step instances from expert trajectories, and the hard split.

- `srl_steps`: expert trajectories -> SRL step instances (`jaxreason.data.srl_steps`), split
  into train and validation by whole trajectory. Trajectories come from `srl.trajectories` (or
  `data.train`): records `{id, problem, steps, final_answer}` or solution texts split by
  `srl.parser`; or, with `srl.source = "countdown"`, from Countdown records `{nums, target}`
  (`data.train`, or the `data.generator` train split) through the solver. Writes
  `trajectories.jsonl`, `steps.jsonl`, `steps_val.jsonl`, `problems.jsonl` /
  `problems_val.jsonl` (each side's problems for outcome-reward stages on the same
  problems: Countdown records, or `{id, problem, answer}` with the final answer) and
  `sft.jsonl` (with `srl.sft_mix`: SFT records `{prompt, completion}` of every train step
  instance with the SRL task's reference
  completion, plus, for Countdown, each train problem with the Countdown task's reference
  solution; empty otherwise).
- `hard_split`: samples `sample.n` completions of every `data.train` record from the current
  model (the `sample` stage, in `<workdir>/sampling`, resumable) and keeps the records with at
  most `hard_split.max_correct` correct samples (0: pass@n = 0), split into `train.jsonl` and
  `held_out.jsonl` (`hard_split.held_out_fraction`, by a hash of the record). Writes
  `pass_counts.jsonl` (every record with its count of correct samples).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from typing import Any

from jaxreason.data import srl_steps as steps_lib
from jaxreason.train import data_stages
from jaxreason.train.errors import ConfigError

log = logging.getLogger(__name__)

SOURCES = ("trajectories", "countdown")


def _countdown_records(config: Any) -> list[dict[str, Any]]:
    if config.data.train:
        from jaxreason.data.readers import read_records

        return read_records(config.data.train, required_fields=("nums", "target"))
    if config.data.generator:
        from jaxreason.train import build

        return build.generated_records(config)[0]
    raise ConfigError("data.train: srl.source 'countdown' needs Countdown records (data.train "
                      "or data.generator)")


def load_trajectories(config: Any) -> tuple[list[dict[str, Any]], int]:
    """(trajectories, records dropped) of the stage's source (see the module docstring)."""
    s = config.srl
    if s.source not in SOURCES:
        raise ConfigError(f"srl.source: one of {SOURCES}, got {s.source!r}")
    if s.source == "countdown":
        records = _countdown_records(config)
        trajectories = [steps_lib.countdown_trajectory(r) for r in records]
        kept = [t for t in trajectories if t is not None]
        return kept, len(records) - len(kept)
    path = s.trajectories or config.data.train
    if not path:
        raise ConfigError("srl.trajectories: set the expert trajectories file (or data.train)")
    if not os.path.exists(path):
        raise ConfigError(f"srl.trajectories: {path!r} does not exist")
    if s.parser not in steps_lib.PARSERS:
        raise ConfigError(f"srl.parser: one of {sorted(steps_lib.PARSERS)}, got {s.parser!r}")
    return steps_lib.read_trajectories(path, parser=s.parser,
                                       solution_field=s.solution_field), 0


def sft_records(config: Any, trajectories: list[dict[str, Any]],
                instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """SFT records `{prompt, completion}`: the SRL format on every step instance, and for
    Countdown the end-to-end solution of every problem (prompts as in training: `data.chat`)."""
    from jaxreason import tasks

    chat = bool(config.data.chat)
    srl = tasks.get("srl")
    out = [{"prompt": srl.prompt(r, chat=chat),
            "completion": srl.reference_completion(r, chat=chat)} for r in instances]
    if config.srl.source == "countdown":
        countdown = tasks.get("countdown")
        for t in trajectories:
            record = t["meta"]
            out.append({"prompt": countdown.prompt(record, chat=chat),
                        "completion": countdown.reference_completion(record, chat=chat)})
    return out


def problem_record(trajectory: dict[str, Any], countdown: bool) -> dict[str, Any]:
    """The end-to-end problem of a trajectory, for outcome-reward stages: the Countdown record
    `{nums, target}`, else `{id, problem, answer}` (the math task's fields)."""
    if countdown:
        return dict(trajectory["meta"])
    return {"id": trajectory["id"], "problem": trajectory["problem"],
            "answer": trajectory.get("final_answer")}


def srl_steps(config: Any, workdir: str) -> dict[str, Any]:
    """Write SRL step instances (train / validation by trajectory); see the module docstring."""
    done = data_stages.finished(workdir)
    if done is not None:
        return done
    s = config.srl
    if not 0.0 <= s.val_fraction < 1.0:
        raise ConfigError(f"srl.val_fraction: must be in [0, 1), got {s.val_fraction}")
    if s.k_start < 1:
        raise ConfigError(f"srl.k_start: must be >= 1, got {s.k_start}")
    trajectories, dropped = load_trajectories(config)
    train, val = steps_lib.split_trajectories(trajectories, float(s.val_fraction),
                                              int(config.seed))
    k = dict(k_start=int(s.k_start), k_end=int(s.k_end))
    instances = steps_lib.all_step_instances(train, **k)
    val_instances = steps_lib.all_step_instances(val, **k)
    countdown = s.source == "countdown"
    os.makedirs(workdir, exist_ok=True)
    names = ("trajectories", "steps", "steps_val", "problems", "problems_val", "sft")
    outputs = {name: os.path.join(workdir, f"{name}.jsonl") for name in names}
    if data_stages._is_writer():
        data_stages.write_jsonl(outputs["trajectories"],
                                [{**t, "split": "train"} for t in train] +
                                [{**t, "split": "val"} for t in val])
        data_stages.write_jsonl(outputs["steps"], instances)
        data_stages.write_jsonl(outputs["steps_val"], val_instances)
        data_stages.write_jsonl(outputs["problems"], [problem_record(t, countdown)
                                                      for t in train])
        data_stages.write_jsonl(outputs["problems_val"], [problem_record(t, countdown)
                                                          for t in val])
        data_stages.write_jsonl(outputs["sft"], sft_records(config, train, instances)
                                if s.sft_mix else [])
    summary = {"status": "completed", "outputs": outputs,
               "num_trajectories": {"train": len(train), "val": len(val)},
               "num_instances": {"train": len(instances), "val": len(val_instances)},
               "dropped_records": dropped}
    print(f"[{os.path.basename(workdir)}] {len(train)} + {len(val)} trajectories -> "
          f"{len(instances)} train / {len(val_instances)} validation step instances", flush=True)
    return data_stages._finish(workdir, summary)


srl_steps.outputs = ("trajectories", "steps", "steps_val", "problems",  # type: ignore[attr-defined]
                     "problems_val", "sft")


def _held_out(record: Any, seed: int, fraction: float) -> bool:
    key = json.dumps(record, sort_keys=True, default=str)
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64 < fraction


def hard_records(lines: list[dict[str, Any]], max_correct: int
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(hard records, pass counts) from `samples.jsonl` lines: a record is hard when at most
    `max_correct` of its samples are correct."""
    counts: dict[int, dict[str, Any]] = {}
    for line in lines:
        entry = counts.setdefault(line["prompt_index"], {"record": line["record"], "n": 0,
                                                         "correct": 0})
        entry["n"] += 1
        entry["correct"] += int(bool(line["correct"]))
    ordered = [counts[i] for i in sorted(counts)]
    return [e["record"] for e in ordered if e["correct"] <= max_correct], ordered


def hard_split(config: Any, workdir: str) -> dict[str, Any]:
    """Records the current model solves in at most `hard_split.max_correct` of `sample.n`
    samples, split into train / held-out; see the module docstring."""
    done = data_stages.finished(workdir)
    if done is not None:
        return done
    h = config.hard_split
    if not 0.0 <= h.held_out_fraction < 1.0:
        raise ConfigError(f"hard_split.held_out_fraction: must be in [0, 1), got "
                          f"{h.held_out_fraction}")
    if h.max_correct < 0:
        raise ConfigError(f"hard_split.max_correct: must be >= 0, got {h.max_correct}")
    sampled = data_stages.sample(config, os.path.join(workdir, "sampling"))
    lines = data_stages.read_jsonl(sampled["outputs"]["samples"])
    hard, counts = hard_records(lines, int(h.max_correct))
    seed, fraction = int(config.seed), float(h.held_out_fraction)
    held_out = [r for r in hard if _held_out(r, seed, fraction)]
    train = [r for r in hard if not _held_out(r, seed, fraction)]
    outputs = {"train": os.path.join(workdir, "train.jsonl"),
               "held_out": os.path.join(workdir, "held_out.jsonl"),
               "pass_counts": os.path.join(workdir, "pass_counts.jsonl"),
               "samples": sampled["outputs"]["samples"]}
    if data_stages._is_writer():
        data_stages.write_jsonl(outputs["train"], train)
        data_stages.write_jsonl(outputs["held_out"], held_out)
        data_stages.write_jsonl(outputs["pass_counts"], counts)
    n = int(config.sample.n)
    solved = sum(1 for e in counts if e["correct"] > 0)
    summary = {"status": "completed", "outputs": outputs, "num_records": len(counts),
               "samples_per_record": n, f"pass@{n}": solved / max(len(counts), 1),
               "num_hard": len(hard), "num_train": len(train), "num_held_out": len(held_out)}
    print(f"[{os.path.basename(workdir)}] pass@{n} {summary[f'pass@{n}']:.3f} on "
          f"{len(counts)} records; {len(hard)} hard (<= {h.max_correct} correct): "
          f"{len(train)} train, {len(held_out)} held out", flush=True)
    return data_stages._finish(workdir, summary)


hard_split.outputs = ("train", "held_out", "pass_counts", "samples")  # type: ignore[attr-defined]
