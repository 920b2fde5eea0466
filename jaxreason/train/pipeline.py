"""Multi-stage runs (trainer "pipeline"): stages that train models and stages that write data,
run in order, each in its own directory, with groups of stages repeated for iterations.

**Stages.** `config.pipeline.stages` lists the stages:

    stages := item ("," item)*
    item   := NAME | "(" NAME ("," NAME)* ")x" COUNT

e.g. `"records,sft"`, or `"sft,(sample,sft_on_samples)x3"` (the group runs three times).
NAME is letters, digits and `_` (not starting with a digit); each name appears once; groups do
not nest; COUNT >= 1 (`x`, `X` or `*` before it). A stage outside a group runs in
`<workdir>/<name>`; a stage of a group runs once per iteration in `<workdir>/<name>.<k>`,
k = 1..COUNT. Every stage is a function `fn(config, workdir) -> summary` from the trainer
registry (`jaxreason.train`): model stages (`sft`, `grpo`, ...) and data stages (`records`,
`sample`, see `jaxreason.train.data_stages`). A stage runs the function named by its own name,
or by `stages.<name>.trainer` (so two SFT stages can coexist: `sft_astro` and `sft_direct`,
both with `trainer = "sft"`).

**Config of a stage.** The recipe's config with `config.stages.<name>` merged over it (a recipe
writes only what differs per stage; `--config.stages.grpo.train.num_steps=50` overrides one
stage from the command line). `pipeline.iteration` is set to the stage's iteration (1-based
inside a group, 0 outside).

**Outputs.** A stage's summary names its outputs, `{"outputs": {name: path}}`: a data stage
lists what it wrote (`records`: `train`, `held_out`; `sample`: `samples`, `correct`), a model
stage's Hugging Face export is its output `model`. Outputs are recorded in the stage's
`summary.json` and in `<workdir>/pipeline.json` (every stage instance: stage, trainer,
iteration, directory, status, outputs).

**References.** A config string `"stage:<name>.<output>"` anywhere in a stage's config
(`data.train`, `eval.data`, `model.path`, ...) is replaced by the path that stage recorded
under that output: the latest instance of `<name>` that ran before this stage (inside a group:
this iteration's instance if `<name>` comes earlier in the group, else the previous
iteration's). `"stage:<name>.<k>.<output>"` names iteration k exactly. A reference to a stage
not in the pipeline, to one that has not run before the referring stage, or to an output the
stage does not record is a ConfigError naming the key (checked before anything runs, where the
stage declares its outputs).

**Models.** Unless `pipeline.inherit_model` is False for the stage, a stage starts from the
latest model exported before it (`model.path` and `tokenizer.path` set to the export, presets
and tokenizer training off), so `sft,grpo` is SFT then GRPO on the SFT model and each
iteration of a group starts from the previous iteration's model. A stage that sets
`stages.<name>.model.path` itself (a path or a `stage:` reference) uses that model (and its
tokenizer, unless it also sets `tokenizer.path`).

**Re-run and resume.** A finished stage leaves `summary.json` in its directory; running the
pipeline again skips it (and says so). An interrupted stage runs again in the same directory:
trainers resume from their checkpoints, data stages from the files they completed. A preempted
stage stops the pipeline (start it again to continue).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from typing import Any, Iterator

import jax
from ml_collections import ConfigDict

from jaxreason.train.errors import ConfigError

log = logging.getLogger(__name__)

SUMMARY = "summary.json"
PIPELINE_SUMMARY = "pipeline.json"
REFERENCE_PREFIX = "stage:"
MODEL_OUTPUT = "model"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_GROUP = re.compile(r"\((?P<body>[^()]*)\)\s*[xX*]\s*(?P<count>\d+)\Z")
_SKIP_SECTIONS = ("stages", "pipeline")  # never searched for references


# ----------------------------------------------------------------------------- the plan

@dataclasses.dataclass(frozen=True)
class StageRun:
    """One run of a stage: `name` at `iteration` (0 outside a group)."""

    name: str
    iteration: int = 0

    @property
    def id(self) -> str:
        return f"{self.name}.{self.iteration}" if self.iteration else self.name


def parse_stages(spec: str) -> list[StageRun]:
    """The stage runs of `pipeline.stages`, in execution order (see the module docstring)."""
    key = "pipeline.stages"
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"{key}: empty (e.g. 'sft,grpo' or 'sft,(sample,sft_on_samples)x3')")
    items, depth, current = [], 0, ""
    for ch in spec:
        if ch == "(":
            depth += 1
            if depth > 1:
                raise ConfigError(f"{key}: {spec!r}: groups cannot nest")
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ConfigError(f"{key}: {spec!r}: ')' without '('")
        if ch == "," and depth == 0:
            items.append(current.strip())
            current = ""
        else:
            current += ch
    if depth:
        raise ConfigError(f"{key}: {spec!r}: '(' without ')'")
    items.append(current.strip())

    def check_name(name: str) -> str:
        if not _NAME.match(name):
            raise ConfigError(f"{key}: {spec!r}: {name!r} is not a stage name (letters, digits "
                              f"and _; a group is '(a,b)x3')")
        return name

    runs: list[StageRun] = []
    seen: set[str] = set()
    for item in items:
        if not item:
            raise ConfigError(f"{key}: {spec!r}: empty item (two commas in a row?)")
        if item.startswith("("):
            match = _GROUP.match(item)
            if not match:
                raise ConfigError(f"{key}: {spec!r}: group {item!r} must look like "
                                  f"'(a,b)x3'")
            names = [check_name(n.strip()) for n in match["body"].split(",")]
            count = int(match["count"])
            if count < 1:
                raise ConfigError(f"{key}: {spec!r}: group {item!r} repeats {count} times")
            group = [(n, k) for k in range(1, count + 1) for n in names]
        else:
            group = [(check_name(item), 0)]
            names = [item]
        for name in names:
            if name in seen:
                raise ConfigError(f"{key}: {spec!r}: stage {name!r} appears twice (give each "
                                  f"stage its own name; stages.<name>.trainer picks its kind)")
            seen.add(name)
        runs.extend(StageRun(n, k) for n, k in group)
    return runs


@dataclasses.dataclass(frozen=True)
class Reference:
    stage: str
    iteration: int | None  # None: the latest run of `stage` before the referring stage
    output: str


def parse_reference(value: str, key: str) -> Reference:
    """`stage:<name>.<output>` or `stage:<name>.<k>.<output>` (`key` names the config key)."""
    parts = value[len(REFERENCE_PREFIX):].split(".")
    if len(parts) == 2 and all(_NAME.match(p) for p in parts):
        return Reference(parts[0], None, parts[1])
    if len(parts) == 3 and _NAME.match(parts[0]) and parts[1].isdigit() and _NAME.match(parts[2]):
        return Reference(parts[0], int(parts[1]), parts[2])
    raise ConfigError(f"{key}: {value!r} is not a stage reference (expected "
                      f"'stage:<stage>.<output>' or 'stage:<stage>.<iteration>.<output>')")


def _walk(config: ConfigDict, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every leaf, outside the `stages` and `pipeline` sections."""
    for key, value in config.items():
        path = f"{prefix}{key}"
        if not prefix and key in _SKIP_SECTIONS:
            continue
        if isinstance(value, ConfigDict):
            yield from _walk(value, f"{path}.")
        else:
            yield path, value


def _set(config: ConfigDict, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = config
    for part in parents:
        node = node[part]
    node[last] = value


def _overrides(config: ConfigDict, name: str) -> ConfigDict:
    return config.stages[name] if name in config.stages else ConfigDict()


def _has(section: ConfigDict, path: str) -> bool:
    node: Any = section
    for part in path.split("."):
        if not isinstance(node, ConfigDict) or part not in node:
            return False
        node = node[part]
    return True


def _key_of(config: ConfigDict, name: str, path: str) -> str:
    """The config key a user wrote for `path` of stage `name` (its override, or the recipe's)."""
    return f"stages.{name}.{path}" if _has(_overrides(config, name), path) else path


# ----------------------------------------------------------------------------- configs

OPEN_SECTIONS = ("data.generator_options", "model.overrides")  # option dicts: any key


def merge(base: ConfigDict, overrides: ConfigDict, where: str = "stages") -> ConfigDict:
    """A copy of `base` with every leaf of `overrides` set (keys must exist in `base`, except
    inside the open option sections `data.generator_options` and `model.overrides`)."""
    out = ConfigDict(base.to_dict(), type_safe=True)

    def apply(target: ConfigDict, source: ConfigDict, path: str) -> None:
        section = path.split(".", 2)[2] if path.count(".") >= 2 else ""
        for key, value in source.items():
            if key not in target and section in OPEN_SECTIONS:
                target[key] = value.to_dict() if isinstance(value, ConfigDict) else value
                continue
            if key not in target:
                raise ConfigError(f"{path}.{key}: unknown config key (not in the base config)")
            if isinstance(value, ConfigDict) and isinstance(target[key], ConfigDict):
                apply(target[key], value, f"{path}.{key}")
            else:
                try:
                    target[key] = value
                except TypeError as e:
                    raise ConfigError(f"{path}.{key}: {e}") from None
    apply(out, overrides, where)
    return out


def stage_kind(config: ConfigDict, name: str) -> str:
    """The registered function a stage runs: `stages.<name>.trainer`, else its own name."""
    overrides = _overrides(config, name)
    return overrides.trainer if "trainer" in overrides and overrides.trainer else name


def stage_config(config: ConfigDict, run: StageRun | str, previous_export: str | None
                 ) -> ConfigDict:
    """The config of one stage run before references are resolved: the recipe with the stage's
    overrides merged over it, its trainer, its iteration, and the model it starts from."""
    run = StageRun(run) if isinstance(run, str) else run
    overrides = _overrides(config, run.name)
    stage = merge(config, overrides, f"stages.{run.name}")
    with stage.unlocked():
        stage.trainer = stage_kind(config, run.name)
        if "pipeline" in stage:
            stage.pipeline.iteration = run.iteration
    inherit = stage.pipeline.get("inherit_model", True) if "pipeline" in stage else True
    explicit_model = _has(overrides, "model.path") and bool(overrides.model.path)
    if previous_export is not None and inherit and not explicit_model:
        stage.model.path = previous_export  # continue from the previous stage's model
        stage.model.preset = None
        stage.tokenizer.path = previous_export
        stage.tokenizer.train_vocab_size = 0
    return stage


def _use_model_tokenizer(stage: ConfigDict, overrides: ConfigDict) -> None:
    """A stage whose own override names its model uses that model's tokenizer and no preset
    (unless the override sets them too)."""
    if not (_has(overrides, "model.path") and stage.model.path):
        return
    if not _has(overrides, "model.preset"):
        stage.model.preset = None
    if not _has(overrides, "tokenizer.path"):
        stage.tokenizer.path = stage.model.path
        if not _has(overrides, "tokenizer.train_vocab_size"):
            stage.tokenizer.train_vocab_size = 0


def declared_outputs(kind: str) -> tuple[str, ...] | None:
    """Outputs a stage function declares (`fn.outputs`); model stages: ("model",)."""
    from jaxreason.train import get_trainer

    try:
        fn = get_trainer(kind)
    except (KeyError, ImportError, AttributeError):
        return None
    outputs = getattr(fn, "outputs", None)
    return tuple(outputs) if outputs is not None else (MODEL_OUTPUT,)


def validate(config: ConfigDict, runs: list[StageRun]) -> None:
    """Everything checkable before a stage runs: stage kinds, overrides, references."""
    from jaxreason.train import trainer_names

    known = [t for t in trainer_names() if t != "pipeline"]
    names = list(dict.fromkeys(r.name for r in runs))
    for name in names:
        kind = stage_kind(config, name)
        if kind == "pipeline" or kind not in known:
            if kind != name:
                raise ConfigError(f"stages.{name}.trainer: {kind!r} is not a trainer or data "
                                  f"stage; known: {known}")
            raise ConfigError(f"pipeline.stages: stage {name!r} is not a trainer or data stage "
                              f"(set stages.{name}.trainer to one of {known})")
    for index, run in enumerate(runs):
        stage = stage_config(config, run, None)
        before = runs[:index]
        for path, value in _walk(stage):
            if not (isinstance(value, str) and value.startswith(REFERENCE_PREFIX)):
                continue
            key = _key_of(config, run.name, path)
            ref = parse_reference(value, key)
            if ref.stage not in names:
                raise ConfigError(f"{key}: {value!r}: no stage {ref.stage!r} in "
                                  f"pipeline.stages (stages: {names})")
            if _target(ref, before) is None:
                which = (f"iteration {ref.iteration} of stage {ref.stage!r}"
                         if ref.iteration is not None else f"stage {ref.stage!r}")
                raise ConfigError(f"{key}: {value!r}: {which} does not run before "
                                  f"{run.id}")
            outputs = declared_outputs(stage_kind(config, ref.stage))
            if outputs is not None and ref.output not in outputs:
                raise ConfigError(f"{key}: {value!r}: stage {ref.stage!r} has no output "
                                  f"{ref.output!r} (outputs: {list(outputs)})")


def _target(ref: Reference, before: list[StageRun]) -> StageRun | None:
    for run in reversed(before):
        if run.name == ref.stage and (ref.iteration is None or run.iteration == ref.iteration):
            return run
    return None


def resolve(config: ConfigDict, stage: ConfigDict, run: StageRun, before: list[StageRun],
            outputs: dict[str, dict[str, str]]) -> ConfigDict:
    """`stage` with every `stage:` reference replaced by the recorded path."""
    for path, value in list(_walk(stage)):
        if not (isinstance(value, str) and value.startswith(REFERENCE_PREFIX)):
            continue
        key = _key_of(config, run.name, path)
        ref = parse_reference(value, key)
        target = _target(ref, before)
        if target is None:
            raise ConfigError(f"{key}: {value!r}: stage {ref.stage!r} does not run before "
                              f"{run.id}")
        recorded = outputs.get(target.id, {})
        if ref.output not in recorded:
            raise ConfigError(f"{key}: {value!r}: stage {target.id} recorded no output "
                              f"{ref.output!r} (outputs: {sorted(recorded)})")
        _set(stage, path, recorded[ref.output])
    _use_model_tokenizer(stage, _overrides(config, run.name))
    return stage


# ----------------------------------------------------------------------------- running

def _write_json(path: str, value: Any) -> None:
    """Atomically (tmp + rename), process 0 only."""
    if jax.process_index() != 0:
        return
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=2, default=float)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _outputs_of(summary: dict[str, Any]) -> dict[str, str]:
    outputs = dict(summary.get("outputs") or {})
    if summary.get("export"):
        outputs.setdefault(MODEL_OUTPUT, summary["export"])
    return outputs


def train(config: ConfigDict, workdir: str) -> dict[str, Any]:
    """Run the stages in order; returns {stage run id: its summary} (each with `outputs`)."""
    from jaxreason.train import get_trainer

    runs = parse_stages(config.pipeline.stages)
    validate(config, runs)
    os.makedirs(workdir, exist_ok=True)
    summaries: dict[str, Any] = {}
    outputs: dict[str, dict[str, str]] = {}
    record: dict[str, Any] = {"stages": {}}
    latest_model: str | None = None
    for index, run in enumerate(runs):
        stage_dir = os.path.join(workdir, run.id)
        summary_file = os.path.join(stage_dir, SUMMARY)
        kind = stage_kind(config, run.name)
        skipped = os.path.exists(summary_file)
        if skipped:
            with open(summary_file) as f:
                summary = json.load(f)
            log.info("stage %s: already done (%s)", run.id, summary_file)
            print(f"[{run.id}] finished earlier: skipped ({summary_file})", flush=True)
        else:
            stage = resolve(config, stage_config(config, run, latest_model), run, runs[:index],
                            outputs)
            log.info("stage %s (%s): starting in %s", run.id, kind, stage_dir)
            print(f"[{run.id}] running {kind} in {stage_dir}", flush=True)
            summary = dict(get_trainer(kind)(stage, stage_dir))
            summary["outputs"] = _outputs_of(summary)
            if summary.get("status") != "preempted":
                os.makedirs(stage_dir, exist_ok=True)
                _write_json(summary_file, summary)
        summaries[run.id] = summary
        outputs[run.id] = _outputs_of(summary)
        record["stages"][run.id] = {
            "stage": run.name, "trainer": kind, "iteration": run.iteration, "dir": stage_dir,
            "status": summary.get("status"), "skipped": skipped, "outputs": outputs[run.id]}
        _write_json(os.path.join(workdir, PIPELINE_SUMMARY), record)
        if summary.get("status") == "preempted":
            print(f"[{run.id}] preempted: start the pipeline again to resume", flush=True)
            return summaries
        eval_metrics = summary.get("eval") or {}
        if "accuracy" in eval_metrics:
            log.info("stage %s: held-out accuracy %.3f", run.id, eval_metrics["accuracy"])
            print(f"[{run.id}] held-out accuracy: {eval_metrics['accuracy']:.3f} "
                  f"({int(eval_metrics.get('num_examples', 0))} examples)", flush=True)
        if MODEL_OUTPUT in outputs[run.id]:
            latest_model = outputs[run.id][MODEL_OUTPUT]
        elif declared_outputs(kind) == (MODEL_OUTPUT,) and index < len(runs) - 1:
            raise ConfigError(f"stage {run.id}: no exported model for the next stage; set "
                              f"checkpoint.export_hf=True")
    return summaries
