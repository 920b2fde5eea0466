"""The `pairs` data stage of Iterative RPO: graded samples of the current model -> preference
pairs for the next `dpo` stage.

1. Sample `pairs.n` completions of every training prompt from the current model and grade them
   with the task: this is the `sample` stage (`data_stages.sample`, run into `<workdir>/samples`
   with `sample.n = pairs.n` and this iteration's temperature), so sampling resumes batch by
   batch and grading is the one the evaluator uses.
2. Per prompt (empty completions are left out and counted: a pair needs two responses):
   winners are the distinct correct completions (with `pairs.require_format`, only
   those whose answer is in the task's format: an unparseable answer is a loser even when a
   lenient extractor finds the right number); losers are the distinct others.
3. Up to `pairs.k` (winner, loser) pairs per prompt, drawn without replacement from all
   winner x loser combinations with a generator seeded by (seed, iteration, prompt index).
   Prompts whose samples are all winners or all losers give no pair; their share is reported.

Output `pairs` (`pairs.jsonl`: prompt, chosen, rejected, prompt_index, iteration,
chosen_truncated, rejected_truncated) and `samples` (the graded samples). The summary has
num_prompts, num_samples, sample_accuracy, num_pairs, prompts_with_pairs, all_correct_prompts,
all_wrong_prompts, empty_completions, no_pair_share, temperature.
"""

from __future__ import annotations

import logging
import os
import zlib
from typing import Any, Sequence

import numpy as np

from jaxreason.train import data_stages
from jaxreason.train.errors import ConfigError

log = logging.getLogger(__name__)


def iteration_temperature(spec: str, iteration: int) -> float:
    """The temperature of `iteration` (1-based; 0 = outside a group = the first) from
    `pairs.temperatures` ("0.8,0.8,1.3": one per iteration, the last one repeats)."""
    try:
        values = [float(x) for x in str(spec).split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"pairs.temperatures: {spec!r} is not a comma-separated list of "
                          f"numbers") from None
    if not values or any(v < 0 for v in values):
        raise ConfigError(f"pairs.temperatures: {spec!r}: give one or more temperatures >= 0")
    return values[min(max(iteration, 1), len(values)) - 1]


def build_pairs(lines: Sequence[dict[str, Any]], *, k: int, seed: int, iteration: int,
                require_format: bool = True) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(pair records, statistics) from graded sample lines (`samples.jsonl` of the sample
    stage: prompt_index, prompt, completion, correct, format_ok, finish_reason)."""
    by_prompt: dict[int, list[dict[str, Any]]] = {}
    for line in lines:
        by_prompt.setdefault(int(line["prompt_index"]), []).append(line)
    pairs: list[dict[str, Any]] = []
    all_correct = all_wrong = with_pairs = empty = 0
    for index in sorted(by_prompt):
        winners: dict[str, dict[str, Any]] = {}
        losers: dict[str, dict[str, Any]] = {}
        for line in by_prompt[index]:
            if not line["completion"].strip():  # nothing to train on (a pair file forbids it)
                empty += 1
                continue
            wins = bool(line["correct"]) and (not require_format or line.get("format_ok") is
                                              not False)
            (winners if wins else losers).setdefault(line["completion"], line)
        if not losers:
            all_correct += 1
        if not winners:
            all_wrong += 1
        if not winners or not losers:
            continue
        with_pairs += 1
        w, l = list(winners.values()), list(losers.values())
        combos = len(w) * len(l)
        rng = np.random.default_rng(zlib.crc32(f"{seed}:{iteration}:{index}".encode()))
        for c in rng.choice(combos, size=min(k, combos), replace=False):
            chosen, rejected = w[int(c) // len(l)], l[int(c) % len(l)]
            pairs.append({"prompt": chosen["prompt"], "chosen": chosen["completion"],
                          "rejected": rejected["completion"], "prompt_index": index,
                          "iteration": iteration,
                          "chosen_truncated": chosen.get("finish_reason") == "length",
                          "rejected_truncated": rejected.get("finish_reason") == "length"})
    prompts = len(by_prompt)
    stats = {"num_prompts": prompts, "num_samples": len(lines), "num_pairs": len(pairs),
             "sample_accuracy": float(np.mean([bool(x["correct"]) for x in lines]))
             if lines else 0.0,
             "prompts_with_pairs": with_pairs, "all_correct_prompts": all_correct,
             "all_wrong_prompts": all_wrong, "empty_completions": empty,
             "no_pair_share": (prompts - with_pairs) / prompts if prompts else 0.0}
    return pairs, stats


def pairs(config: Any, workdir: str) -> dict[str, Any]:
    """Sample, grade and pair (see the module docstring); writes `pairs.jsonl`."""
    done = data_stages.finished(workdir)
    if done is not None:
        return done
    p = config.pairs
    if p.n < 2:
        raise ConfigError(f"pairs.n: a pair needs >= 2 samples per prompt, got {p.n}")
    if p.k < 1:
        raise ConfigError(f"pairs.k: must be >= 1, got {p.k}")
    iteration = int(config.pipeline.get("iteration", 0)) if "pipeline" in config else 0
    temperature = iteration_temperature(p.temperatures, iteration)
    sample_config = config.copy_and_resolve_references()
    with sample_config.unlocked():
        sample_config.sample.n = int(p.n)
        sample_config.sample.temperature = temperature
    os.makedirs(workdir, exist_ok=True)
    sampled = data_stages.sample(sample_config, os.path.join(workdir, "samples"))
    lines = data_stages.read_jsonl(sampled["outputs"]["samples"])
    records, stats = build_pairs(lines, k=int(p.k), seed=int(config.seed), iteration=iteration,
                                 require_format=bool(p.require_format))
    outputs = {"pairs": os.path.join(workdir, "pairs.jsonl"),
               "samples": sampled["outputs"]["samples"]}
    if data_stages._is_writer():
        data_stages.write_jsonl(outputs["pairs"], records)
    summary = {"status": "completed", "outputs": outputs, "iteration": iteration,
               "temperature": temperature, **stats}
    print(f"[{os.path.basename(workdir)}] {stats['num_pairs']} pairs from "
          f"{stats['num_prompts']} prompts x {p.n} samples (sample accuracy "
          f"{stats['sample_accuracy']:.3f}, no pair for {stats['no_pair_share']:.1%} of prompts: "
          f"{stats['all_correct_prompts']} all correct, {stats['all_wrong_prompts']} all wrong)",
          flush=True)
    if not records:
        log.warning("pairs: no pair at all; the next dpo stage has nothing to train on")
    return data_stages._finish(workdir, summary)


pairs.outputs = ("pairs", "samples")  # type: ignore[attr-defined]
