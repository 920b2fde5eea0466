"""`evaluate(config, workdir)`: a suite of benchmarks on one model, the "evaluate" trainer of
the launcher (`python launch/eval.py --config=configs/eval/<suite>.py --workdir=DIR
--config.model.path=MODEL`), usable as a pipeline stage too.

`model.path` may be a Hugging Face directory, a run's workdir (its `export/`), or a run's
workdir without an export (the latest Orbax checkpoint's parameters, with the run's own saved
config and tokenizer). Each benchmark of `suite.benchmarks` reads its local file
(`suite.<name>.path`), runs greedy and/or n sampled completions per item with the benchmark's
settings (the papers', overridable per benchmark), and writes `<workdir>/<name>/items.jsonl`
(resumable); the suite writes `<workdir>/report.json` and `report.md`.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import jax

from jaxreason.evaluation.benchmarks import get_benchmark
from jaxreason.evaluation.harness import EvalSettings, answer_rate, evaluate as evaluate_items
from jaxreason.evaluation.report import behavior_domain, write_report
from jaxreason.train.errors import ConfigError

log = logging.getLogger(__name__)

SETTING_KEYS = ("path", "num_items", "chat", "greedy", "n", "temperature", "top_p",
                "max_new_tokens", "stop")


def resolve_model(path: str) -> tuple[str | None, str | None]:
    """(HF directory to load, or None; run workdir whose checkpoint to restore, or None)."""
    if not path:
        raise ConfigError("model.path: set the model to evaluate (a HF directory, a run's "
                          "workdir or its export)")
    if os.path.exists(os.path.join(path, "config.json")):
        return path, None
    if os.path.exists(os.path.join(path, "export", "config.json")):
        return os.path.join(path, "export"), None
    if os.path.isdir(os.path.join(path, "checkpoints")):
        return None, path
    raise ConfigError(f"model.path: {path!r} is neither a HF directory (config.json) nor a "
                      f"run's workdir (export/ or checkpoints/)")


def load_model(config: Any, mesh: Any) -> tuple[Any, Any]:
    """(Model, tokenizer) of `model.path` (see `resolve_model`)."""
    from jaxreason.model.model import Model, load_pretrained
    from jaxreason.tokenizer import load_tokenizer

    hf_dir, run_dir = resolve_model(config.model.path)
    m = config.model
    if hf_dir is not None:
        tokenizer = load_tokenizer(config.tokenizer.path or hf_dir)
        model = load_pretrained(hf_dir, dtype=m.dtype, param_dtype=m.param_dtype, mesh=mesh,
                                scan_layers=bool(m.scan_layers))
        return model, tokenizer
    return _restore_run(run_dir, config, mesh)


def _restore_run(run_dir: str, config: Any, mesh: Any) -> tuple[Any, Any]:
    """The latest checkpoint's parameters of a run, rebuilt with the run's saved config."""
    from ml_collections import ConfigDict

    from jaxreason.model.model import Model
    from jaxreason.tokenizer import load_tokenizer
    from jaxreason.train import build
    from jaxreason.train.checkpoint import Checkpointer
    from jaxreason.train.optim import make_optimizer
    from jaxreason.train.state import abstract_state, random_params
    from jaxreason.train.trainable import is_partial

    checkpointer = Checkpointer(os.path.join(run_dir, "checkpoints"), async_save=False)
    try:
        step = checkpointer.latest_step()
        if step is None:
            raise ConfigError(f"model.path: {run_dir!r} has no checkpoint")
        saved = ConfigDict(checkpointer.saved_config(step))
        tokenizer = load_tokenizer(config.tokenizer.path or os.path.join(run_dir, build.TOKENIZER_DIR))
        model_config = build.build_model_config(saved, tokenizer)
        model_config = model_config.replace(dtype=config.model.dtype)
        optimizer, _ = make_optimizer(saved.optim, max(int(saved.train.num_steps), 1))
        target = abstract_state(model_config, optimizer, mesh)
        base = None
        if is_partial(target.params):  # LoRA: the checkpoint's adapters go onto the run's base
            base = build.initial_params(saved, model_config, mesh)
            if base is None:
                base = random_params(model_config, mesh, seed=int(saved.seed))
        state, _ = checkpointer.restore(step, target, None, base=base)
        log.info("evaluating %s at step %d", run_dir, step)
        return Model(model_config, state.params, mesh), tokenizer
    finally:
        checkpointer.close()


def benchmark_settings(config: Any, name: str) -> tuple[Any, dict[str, Any]]:
    """(benchmark, resolved settings) from the registry's defaults and `suite.<name>`."""
    try:
        bench = get_benchmark(name)
    except KeyError as e:
        raise ConfigError(f"suite.benchmarks: {e.args[0]}") from None
    section = config.suite[name] if name in config.suite else None
    settings = {"path": None, "num_items": 0, "chat": bench.chat, "greedy": True, "n": bench.n,
                "temperature": bench.temperature, "top_p": bench.top_p,
                "max_new_tokens": bench.max_new_tokens, "stop": "|".join(bench.stop)}
    if section is not None:
        for key in SETTING_KEYS:
            if key in section and section[key] is not None:
                settings[key] = section[key]
    if not settings["path"]:
        raise ConfigError(f"suite.{name}.path: the benchmark's local file is not set")
    if not os.path.exists(settings["path"]):
        raise ConfigError(f"suite.{name}.path: {settings['path']!r} does not exist")
    return bench, settings


def benchmark_items(bench: Any, settings: dict[str, Any], tokenizer: Any
                    ) -> tuple[Any, list[dict[str, Any]], list[list[int]]]:
    """(task, records, prompt token ids) of a benchmark's file, at most `num_items` of them,
    rendered plain or with the chat template as its settings say."""
    from jaxreason.prompting import PromptFormat, prompt_token_ids

    task = bench.make_task()
    records = task.load_records(settings["path"])
    if settings["num_items"] and settings["num_items"] > 0:
        records = records[: settings["num_items"]]
    fmt = PromptFormat(chat=bool(settings["chat"]))
    prompts = [prompt_token_ids(task.prompt(r, chat=fmt.chat), tokenizer, fmt) for r in records]
    return task, records, prompts


def evaluate(config: Any, workdir: str) -> dict[str, Any]:
    """Run the suite; returns {status, eval: {benchmark: figures}, outputs: {report: path}}."""
    from jaxreason.sampling import Sampler
    from jaxreason.train import build

    names = [n.strip() for n in config.suite.benchmarks.split(",") if n.strip()]
    if not names:
        raise ConfigError("suite.benchmarks: empty (e.g. 'math500,aime24')")
    resolved = [(name, *benchmark_settings(config, name)) for name in names]
    build.setup_distributed(config)
    mesh = build.build_mesh(config)
    os.makedirs(workdir, exist_ok=True)
    model, tokenizer = load_model(config, mesh)
    sampler = Sampler(model, tokenizer)
    report: dict[str, Any] = {}
    for name, bench, s in resolved:
        task, records, prompts = benchmark_items(bench, s, tokenizer)
        settings = EvalSettings(greedy=bool(s["greedy"]), n=int(s["n"]),
                                temperature=float(s["temperature"]), top_p=float(s["top_p"]),
                                max_new_tokens=int(s["max_new_tokens"]),
                                stop=tuple(x for x in str(s["stop"] or "").split("|") if x),
                                batch_size=int(config.eval.batch_size), seed=int(config.seed),
                                grading_workers=config.eval.grading_workers)
        figures, items = evaluate_items(
            sampler, task, records, prompts, settings,
            items_file=os.path.join(workdir, name, "items.jsonl"),
            progress=bool(config.log.progress), seed=int(config.seed),
            domain=behavior_domain(bench.task))
        figures["answer_rate"] = answer_rate(items)
        figures["settings"] = {k: v for k, v in s.items()}
        report[name] = figures
        _log_figures(name, figures)
    meta = {"model": config.model.path, "seed": int(config.seed),
            "devices": jax.device_count()}
    json_path, md_path = (None, None)
    if jax.process_index() == 0:
        json_path, md_path = write_report(workdir, report, meta)
    summary = {"status": "completed", "eval": _headline(report),
               "outputs": {"report": json_path or os.path.join(workdir, "report.json")}}
    with open(os.path.join(workdir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2, default=float)
    return summary


# a pipeline stage that writes a report and exports no model (so a later stage keeps the
# latest model trained before it)
evaluate.outputs = ("report",)  # type: ignore[attr-defined]


def _headline(report: dict[str, Any]) -> dict[str, float]:
    """One accuracy per benchmark (greedy, else pass@1), plus their mean as `accuracy`."""
    out = {}
    for name, figs in report.items():
        fig = figs.get("greedy_accuracy") or figs.get("pass@1_mean")
        out[name] = fig["value"]
    if out:
        out["accuracy"] = sum(out.values()) / len(out)
        out["num_examples"] = float(sum(figs["num_items"] for figs in report.values()))
    return out


def _log_figures(name: str, figures: dict[str, Any]) -> None:
    shown = ", ".join(f"{k} {v['value']:.3f}" for k, v in figures.items()
                      if isinstance(v, dict) and "value" in v)
    print(f"[{name}] {figures['num_items']} items: {shown}", flush=True)


def scaling(config: Any, workdir: str) -> dict[str, Any]:
    """Test-time scaling curves (`jaxreason.evaluation.scaling`) of `model.path` on the first
    benchmark of `suite.benchmarks`, settings from the `scaling` section; writes
    `<workdir>/scaling.json` and `scaling.png`."""
    from jaxreason.evaluation.scaling import (ScalingSettings, scaling_curves,
                                              write_scaling_report)
    from jaxreason.sampling import Sampler
    from jaxreason.train import build

    name = config.suite.benchmarks.split(",")[0].strip()
    bench, s = benchmark_settings(config, name)
    build.setup_distributed(config)
    mesh = build.build_mesh(config)
    model, tokenizer = load_model(config, mesh)
    task, records, prompts = benchmark_items(bench, s, tokenizer)
    sc = config.scaling
    settings = ScalingSettings(
        ns=tuple(int(x) for x in str(sc.ns).split(",")), temperature=float(s["temperature"]),
        top_p=float(s["top_p"]), max_new_tokens=int(s["max_new_tokens"]),
        stop=tuple(x for x in str(s["stop"] or "").split("|") if x),
        beams=tuple(tuple(int(v) for v in pair.split("x")) for pair in sc.beams.split(",")),
        beam_rounds=int(sc.beam_rounds), beam_step_tokens=int(sc.beam_step_tokens),
        delimiter=tuple(x.encode().decode("unicode_escape") for x in sc.delimiter.split("|")),
        thresholds=tuple(float(x) for x in str(sc.thresholds).split(",")),
        adaptive_chunk=int(sc.adaptive_chunk), seed=int(config.seed),
        grading_workers=config.eval.grading_workers)
    curves = scaling_curves(Sampler(model, tokenizer), task, records, prompts, settings)
    json_path, png_path = write_scaling_report(
        workdir, curves, f"{name}: {len(records)} problems, {config.model.path}")
    for method, points in curves.items():
        print(f"[{method}] " + ", ".join(f"{p['tokens']:.0f} tok -> {p['accuracy']:.3f}"
                                         for p in points), flush=True)
    return {"status": "completed", "outputs": {"scaling": json_path, "plot": png_path},
            "eval": {}}
