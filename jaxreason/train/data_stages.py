"""Data stages: pipeline stages that write datasets instead of training a model.

A data stage is `fn(config, workdir) -> summary` like a trainer (registered beside them in
`jaxreason.train`, so `config.trainer = "records"` also runs one alone); its summary has
`"outputs": {name: path}` and the function declares its output names as `fn.outputs`, which
lets the pipeline check `stage:<name>.<output>` references before anything runs.

- `records`: the `data.generator` records, written as `train.jsonl` and `held_out.jsonl`
  (outputs `train`, `held_out`); a later stage trains on them with
  `data.train = "stage:records.train"`, `data.generator = None`.
- `sample`: `sample.n` completions of each training prompt from the current model (the latest
  export, or `model.path`), graded by the task through `jaxreason.generation.sample_and_grade`.
  `samples.jsonl` holds one line per completion (prompt_index, sample_index, record, prompt,
  completion, reward, correct, format_ok, finish_reason, num_tokens); `correct.jsonl` the SFT
  records `{prompt, completion}` of the distinct correct completions (rejection sampling / STaR
  data; train on it with `data.task = None` so the record's own completion is the target).
  Outputs `samples`, `correct`.

Files are written atomically (a `.tmp` file renamed into place) by process 0. A stage that
finished (`summary.json` in its workdir) returns its summary without running again. `sample`
works in batches of `sample.batch_size` prompts, each saved as `parts/<batch>.jsonl` when done,
so an interrupted stage resumes at the first missing batch (a batch's samples depend only on
the seed, the iteration and the batch index); the part files are dropped when the sampling
settings change.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import zlib
from typing import Any, Iterable, Sequence

from jaxreason.train.errors import ConfigError

log = logging.getLogger(__name__)

SUMMARY = "summary.json"
PARTS = "parts"


# ----------------------------------------------------------------------------- files

def _is_writer() -> bool:
    import jax

    return jax.process_index() == 0


def _sync(name: str) -> None:
    import jax

    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def write_jsonl(path: str, records: Iterable[Any]) -> int:
    """Write one JSON object per line to `path` atomically; returns the line count."""
    tmp = f"{path}.tmp"
    count = 0
    with open(tmp, "w") as f:
        for record in records:
            f.write(json.dumps(record, default=_plain) + "\n")
            count += 1
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return count


def write_json(path: str, value: Any) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=2, default=_plain)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_jsonl(path: str) -> list[Any]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _plain(value: Any) -> Any:
    """JSON for numpy scalars / arrays and other odd values in records."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return str(value)


def finished(workdir: str) -> dict[str, Any] | None:
    """The summary of a stage that already finished in `workdir`, else None."""
    path = os.path.join(workdir, SUMMARY)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        summary = json.load(f)
    log.info("%s: finished earlier (%s)", workdir, path)
    return summary


def _finish(workdir: str, summary: dict[str, Any]) -> dict[str, Any]:
    if _is_writer():
        write_json(os.path.join(workdir, SUMMARY), summary)
    _sync(f"data stage done: {workdir}")
    return summary


# ----------------------------------------------------------------------------- records

def records(config: Any, workdir: str) -> dict[str, Any]:
    """Write the `data.generator` records: `train.jsonl` and `held_out.jsonl`."""
    done = finished(workdir)
    if done is not None:
        return done
    if not config.data.generator:
        raise ConfigError("data.generator: the records stage writes a generator's records; set "
                          "data.generator (e.g. 'countdown')")
    from jaxreason.train import build

    train, held_out = build.generated_records(config)
    os.makedirs(workdir, exist_ok=True)
    outputs = {"train": os.path.join(workdir, "train.jsonl"),
               "held_out": os.path.join(workdir, "held_out.jsonl")}
    if _is_writer():
        write_jsonl(outputs["train"], train)
        write_jsonl(outputs["held_out"], held_out)
    log.info("records: %d train, %d held-out records in %s", len(train), len(held_out), workdir)
    return _finish(workdir, {"status": "completed", "outputs": outputs,
                             "num_records": {"train": len(train), "held_out": len(held_out)}})


records.outputs = ("train", "held_out")  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- sample

def check_sample_config(config: Any) -> None:
    s = config.sample
    for key in ("n", "batch_size", "max_new_tokens", "max_prompt_tokens"):
        if s[key] < 1:
            raise ConfigError(f"sample.{key}: must be >= 1, got {s[key]}")
    for key in ("num_prompts", "max_correct_per_prompt", "top_k"):
        if s[key] < 0:
            raise ConfigError(f"sample.{key}: must be >= 0, got {s[key]}")
    if s.temperature < 0:
        raise ConfigError(f"sample.temperature: must be >= 0, got {s.temperature}")
    if not 0.0 < s.top_p <= 1.0:
        raise ConfigError(f"sample.top_p: must be in (0, 1], got {s.top_p}")
    if not (s.task or config.data.task):
        raise ConfigError("sample.task: set the task that formats prompts and grades "
                          "completions (or data.task)")
    if not config.model.path:
        raise ConfigError("model.path: the sample stage samples from a model: run it after a "
                          "model stage, or set model.path (a Hugging Face directory)")
    if not os.path.isdir(config.model.path):
        raise ConfigError(f"model.path: directory {config.model.path!r} does not exist")
    if not config.data.train and not config.data.generator:
        raise ConfigError("data.train: the sample stage samples on training prompts: set "
                          "data.train (a records file) or data.generator")
    if config.data.train and not os.path.exists(config.data.train):
        raise ConfigError(f"data.train: {config.data.train!r} does not exist")


def sampling_params(config: Any, batch: int) -> Any:
    """The sampling settings of batch `batch` (its seed depends on the run's seed, the
    pipeline iteration and the batch index only, so a resumed stage samples the same)."""
    from jaxreason.sampling import SamplingParams

    s = config.sample
    iteration = int(config.pipeline.get("iteration", 0)) if "pipeline" in config else 0
    seed = zlib.crc32(f"{config.seed}:{iteration}:{batch}".encode())
    stop = tuple(x for x in (s.stop or "").split("|") if x)
    return SamplingParams(temperature=float(s.temperature), top_p=float(s.top_p),
                          top_k=int(s.top_k), n=int(s.n), seed=seed,
                          max_new_tokens=int(s.max_new_tokens), stop=stop)


def prompt_format(config: Any) -> Any:
    from jaxreason.prompting import PromptFormat

    return PromptFormat(chat=bool(config.data.chat), add_bos=bool(config.data.add_bos),
                        prompt_field=config.data.prompt_field)


def prompt_records(config: Any, task: Any) -> list[dict[str, Any]]:
    """The training records whose prompts are sampled (at most `sample.num_prompts`)."""
    if config.data.generator:
        from jaxreason.train import build

        train, _ = build.generated_records(config)
    else:
        train = task.load_records(config.data.train)
    n = int(config.sample.num_prompts)
    return list(train[:n] if n > 0 else train)


def correct_records(samples: Sequence[dict[str, Any]], max_per_prompt: int = 0
                    ) -> list[dict[str, str]]:
    """SFT records `{prompt, completion}` of the correct samples: each distinct completion of
    a prompt once, at most `max_per_prompt` per prompt (0: all), in sample order."""
    out, seen, per_prompt = [], set(), {}
    for line in samples:
        if not line["correct"]:
            continue
        key = (line["prompt_index"], line["completion"])
        if key in seen:
            continue
        if max_per_prompt and per_prompt.get(line["prompt_index"], 0) >= max_per_prompt:
            continue
        seen.add(key)
        per_prompt[line["prompt_index"]] = per_prompt.get(line["prompt_index"], 0) + 1
        out.append({"prompt": line["prompt"], "completion": line["completion"]})
    return out


def sample_lines(generations: Any, indices: Sequence[int], records: Sequence[Any],
                 prompts: Sequence[Any]) -> list[dict[str, Any]]:
    """One `samples.jsonl` line per row of graded `generations` of the prompts `indices`."""
    lines = []
    reasons = generations.finish_reasons
    for r in range(generations.num_rows):
        i = int(indices[int(generations.prompt_index[r])])
        grade = generations.grades[r] if generations.grades is not None else None
        lines.append({"prompt_index": i, "sample_index": int(generations.sample_index[r]),
                      "record": records[i], "prompt": prompts[i],
                      "completion": generations.texts[r],
                      "reward": float(generations.rewards[r]),
                      "correct": bool(generations.correct[r]),
                      "format_ok": bool(grade.format_ok) if grade is not None else None,
                      "finish_reason": reasons[r], "num_tokens": int(generations.lengths[r])})
    return lines


def _fingerprint(config: Any, num_prompts: int) -> dict[str, Any]:
    """What the part files depend on: a change drops them."""
    return {"sample": config.sample.to_dict(), "model": config.model.path,
            "data": [config.data.train, config.data.generator, config.data.chat,
                     config.data.add_bos], "seed": config.seed,
            "iteration": config.pipeline.get("iteration", 0) if "pipeline" in config else 0,
            "num_prompts": num_prompts}


def sample(config: Any, workdir: str) -> dict[str, Any]:
    """Sample and grade `sample.n` completions per training prompt; write `samples.jsonl` and
    `correct.jsonl`."""
    done = finished(workdir)
    if done is not None:
        return done
    check_sample_config(config)
    import numpy as np

    from jaxreason import tasks
    from jaxreason.generation import sample_and_grade
    from jaxreason.model.model import load_pretrained
    from jaxreason.prompting import prompt_token_ids, record_prompt
    from jaxreason.sampling import Sampler
    from jaxreason.tokenizer import load_tokenizer
    from jaxreason.train import build

    s = config.sample
    task_key = "sample.task" if s.task else "data.task"
    try:
        task = tasks.get(s.task or config.data.task)
    except KeyError as e:
        raise ConfigError(f"{task_key}: {e.args[0]}") from None
    build.setup_distributed(config)
    mesh = build.build_mesh(config)
    tokenizer_dir = config.tokenizer.path or config.model.path
    if not os.path.isdir(tokenizer_dir):
        raise ConfigError(f"tokenizer.path: directory {tokenizer_dir!r} does not exist")
    tokenizer = load_tokenizer(tokenizer_dir)
    fmt = prompt_format(config)
    records_ = prompt_records(config, task)
    prompts = [record_prompt(r, task, fmt) for r in records_]
    ids = [prompt_token_ids(p, tokenizer, fmt) for p in prompts]
    keep = [i for i, x in enumerate(ids) if len(x) <= s.max_prompt_tokens]
    if len(keep) < len(ids):
        log.warning("sample: %d of %d prompts are longer than sample.max_prompt_tokens=%d and "
                    "are skipped", len(ids) - len(keep), len(ids), s.max_prompt_tokens)

    os.makedirs(workdir, exist_ok=True)
    parts = os.path.join(workdir, PARTS)
    fingerprint = _fingerprint(config, len(records_))
    fingerprint_file = os.path.join(parts, "settings.json")
    if _is_writer():
        if os.path.exists(fingerprint_file):
            with open(fingerprint_file) as f:
                if json.load(f) != json.loads(json.dumps(fingerprint, default=_plain)):
                    log.warning("sample: settings changed since the last attempt; dropping %s",
                                parts)
                    shutil.rmtree(parts)
        os.makedirs(parts, exist_ok=True)
        if not os.path.exists(fingerprint_file):
            write_json(fingerprint_file, fingerprint)
    _sync(f"sample parts ready: {workdir}")
    batches = [keep[start:start + s.batch_size] for start in range(0, len(keep), s.batch_size)]
    part_files = [os.path.join(parts, f"{b:05d}.jsonl") for b in range(len(batches))]
    already = [os.path.exists(p) for p in part_files]  # decided once, the same on every process
    if any(already):
        log.info("sample: resuming, %d of %d batches done", sum(already), len(batches))

    sampler = None
    for b, (indices, part) in enumerate(zip(batches, part_files)):
        if already[b]:
            continue
        if sampler is None:
            model = load_pretrained(config.model.path, dtype=config.model.dtype,
                                    param_dtype=config.model.param_dtype, mesh=mesh)
            sampler = Sampler(model, tokenizer,
                              max_kv_cache_bytes=config.sampling.max_kv_cache_bytes)
        generations = sample_and_grade(
            sampler, [ids[i] for i in indices], [records_[i] for i in indices],
            sampling_params(config, b), task=task, num_workers=s.grading_workers,
            item_timeout_s=float(s.grading_timeout_s))
        if _is_writer():
            write_jsonl(part, sample_lines(generations, indices, records_, prompts))
        log.info("sample: batch %d / %d (%d prompts x %d)", b + 1, len(batches), len(indices),
                 s.n)
    _sync(f"sample batches done: {workdir}")

    lines = [line for p in part_files for line in read_jsonl(p)]
    correct = correct_records(lines, int(s.max_correct_per_prompt))
    outputs = {"samples": os.path.join(workdir, "samples.jsonl"),
               "correct": os.path.join(workdir, "correct.jsonl")}
    if _is_writer():
        write_jsonl(outputs["samples"], lines)
        write_jsonl(outputs["correct"], correct)
    rewards = np.array([line["reward"] for line in lines], np.float64)
    solved = {line["prompt_index"] for line in lines if line["correct"]}
    summary = {
        "status": "completed", "outputs": outputs,
        "num_prompts": len(keep), "skipped_long_prompts": len(ids) - len(keep),
        "num_samples": len(lines), "num_correct_records": len(correct),
        "accuracy": float(np.mean([line["correct"] for line in lines])) if lines else 0.0,
        "mean_reward": float(rewards.mean()) if lines else 0.0,
        "solved_prompts": len(solved)}
    print(f"[{os.path.basename(workdir)}] {len(lines)} samples of {len(keep)} prompts: accuracy "
          f"{summary['accuracy']:.3f}, {len(correct)} distinct correct records", flush=True)
    return _finish(workdir, summary)


sample.outputs = ("samples", "correct")  # type: ignore[attr-defined]
