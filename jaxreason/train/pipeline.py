"""Multi-stage runs: `config.pipeline.stages = "sft,grpo"` trains stage after stage, each in
`<workdir>/<stage>`, each starting from the previous stage's exported model.

A stage's config is the recipe's config with `config.stages.<stage>` merged over it (so a
recipe writes only what differs per stage, and `--config.stages.grpo.train.num_steps=50`
overrides one stage from the command line). A finished stage leaves `summary.json` in its
directory and is skipped when the pipeline is started again, so resuming a pipeline resumes
the stage that was running.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import jax
from ml_collections import ConfigDict

from jaxreason.train.errors import ConfigError

log = logging.getLogger(__name__)

SUMMARY = "summary.json"


def merge(base: ConfigDict, overrides: ConfigDict, where: str = "stages") -> ConfigDict:
    """A copy of `base` with every leaf of `overrides` set (keys must exist in `base`)."""
    out = ConfigDict(base.to_dict(), type_safe=True)

    def apply(target: ConfigDict, source: ConfigDict, path: str) -> None:
        for key, value in source.items():
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


def stage_config(config: ConfigDict, name: str, previous_export: str | None) -> ConfigDict:
    overrides = config.stages[name] if name in config.stages else ConfigDict()
    stage = merge(config, overrides, f"stages.{name}")
    with stage.unlocked():
        stage.trainer = name
        if previous_export is not None:  # continue from the previous stage's model
            stage.model.path = previous_export
            stage.model.preset = None
            stage.tokenizer.path = previous_export
            stage.tokenizer.train_vocab_size = 0
    return stage


def train(config: ConfigDict, workdir: str) -> dict[str, Any]:
    """Run the stages in order; returns {stage: its summary}."""
    from jaxreason.train import get_trainer, trainer_names

    stages = [s.strip() for s in config.pipeline.stages.split(",") if s.strip()]
    if not stages:
        raise ConfigError("pipeline.stages: empty (e.g. 'sft,grpo')")
    for name in stages:
        if name == "pipeline" or name not in trainer_names():
            raise ConfigError(f"pipeline.stages: {name!r} is not a trainer; known: "
                              f"{[t for t in trainer_names() if t != 'pipeline']}")
    summaries: dict[str, Any] = {}
    previous_export = None
    for name in stages:
        stage_dir = os.path.join(workdir, name)
        summary_file = os.path.join(stage_dir, SUMMARY)
        if os.path.exists(summary_file):
            with open(summary_file) as f:
                summaries[name] = json.load(f)
            log.info("stage %s: already done (%s)", name, summary_file)
        else:
            log.info("stage %s: starting in %s", name, stage_dir)
            summary = get_trainer(name)(stage_config(config, name, previous_export), stage_dir)
            summaries[name] = summary
            if summary.get("status") == "preempted":
                return summaries
            if jax.process_index() == 0:
                with open(summary_file, "w") as f:
                    json.dump(summary, f, indent=2, default=float)
        eval_metrics = summaries[name].get("eval") or {}
        if "accuracy" in eval_metrics:
            log.info("stage %s: held-out accuracy %.3f", name, eval_metrics["accuracy"])
            print(f"[{name}] held-out accuracy: {eval_metrics['accuracy']:.3f} "
                  f"({int(eval_metrics.get('num_examples', 0))} examples)", flush=True)
        previous_export = summaries[name].get("export")
        if previous_export is None and name != stages[-1]:
            raise ConfigError(f"stage {name}: no exported model for the next stage; set "
                              f"checkpoint.export_hf=True")
    return summaries
