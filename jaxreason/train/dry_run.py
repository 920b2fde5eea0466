"""`launch/train.py --dry_run`: the memory plan of a recipe on its mesh, printed as a table, a
verdict per stage and, last, one JSON line.

Every stage of a pipeline is planned with the recipe's architecture (`model.preset`, or the
config.json of `model.path`: no weights are read). With `compile_programs`, the real train
step (the algorithm's loss, pre-step and update counts, built by `train.step` as the run
builds it) and the real sampler program are lowered with abstract inputs (ShapeDtypeStructs
carrying the run's shardings) and compiled; XLA's memory analysis of each is reported beside
the closed form. Compiling needs the devices of the mesh: on a CPU host they are simulated
(`--dry_run_devices`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import time
from typing import Any

import jax
import numpy as np
from ml_collections import ConfigDict

from jaxreason.model.config import ModelConfig, preset_names
from jaxreason.train import build, memory_plan
from jaxreason.train.errors import ConfigError
from jaxreason.train.memory_plan import Plan, Workload

# What changes each term, named in the verdict of a recipe that does not fit.
REMEDIES = {
    "params": "more devices in mesh.fsdp x mesh.tensor",
    "optimizer": "more devices in mesh.fsdp x mesh.tensor",
    "gradients": "more devices in mesh.fsdp x mesh.tensor (train.num_microbatches = 1 keeps "
                 "one copy instead of two)",
    "activations": "train.num_microbatches, model.remat_policy=full, shorter rows "
                   "(data.max_length / grpo.max_new_tokens), mesh.tensor",
    "prestep": "train.logprob_chunk_size, fewer grpo.prompts_per_step x group_size, or one "
               "update per step and grpo.beta = 0 (the pre-step's old / reference log-probs "
               "are one forward over the whole step batch, not micro-batched)",
    "reference": "grpo.beta = 0 (no reference model) or more devices in mesh.fsdp",
    "decode_weights": "mesh.tensor (decoding weights are gathered over fsdp, split over "
                      "tensor only)",
    "kv_cache": "sampling.max_kv_cache_bytes (sequential sampling chunks), the sampler's "
                "rows and budgets (grpo.prompts_per_step x group_size and max_new_tokens; "
                "sample.batch_size x n and max_new_tokens), mesh.tensor",
}


def stage_configs(config: ConfigDict) -> list[tuple[str, ConfigDict]]:
    """(stage name, config) of every distinct stage (a pipeline's, via its own merging; a
    repeated group's iterations are planned once), or ("", config) for a single trainer."""
    if config.trainer != "pipeline":
        return [("", config)]
    from jaxreason.train.pipeline import parse_stages, stage_config

    names = list(dict.fromkeys(run.name for run in parse_stages(config.pipeline.stages)))
    return [(name, stage_config(config, name, None)) for name in names]


def architecture(config: ConfigDict) -> tuple[str | None, str | None]:
    """(preset, path) of the recipe's model for planning: the preset when set (it replaces
    `model.path`: no weights are needed), else `model.path`'s config.json."""
    m = config.model
    if m.preset:
        return m.preset, None
    if m.path and os.path.exists(os.path.join(m.path, "config.json")):
        return None, m.path
    raise ConfigError(f"model.path: {m.path!r} has no config.json to plan from; set "
                      f"--config.model.preset to one of {preset_names()}")


def stage_model(stage: ConfigDict, preset: str | None, path: str | None) -> ModelConfig:
    """The stage's model config (its numerics) over the recipe's architecture."""
    stage = ConfigDict(stage.to_dict())
    stage.model.preset, stage.model.path = preset, path
    return build.build_model_config(stage, None)


def unplanned_stages(config: ConfigDict) -> list[str]:
    """Stages `plan_recipe` skips: data stages without a model, and `search`, whose batches
    follow the trees' open leaves."""
    return [f"{name} ({stage.trainer})" for name, stage in stage_configs(config)
            if memory_plan.workload(stage) is None]


def plan_recipe(config: ConfigDict, device: str, *, compile_programs: bool = False
                ) -> list[Plan]:
    """The plan of every stage that holds a model (see `memory_plan`)."""
    preset, path = architecture(config)
    plans = []
    for name, stage in stage_configs(config):
        work = memory_plan.workload(stage)
        if work is None:
            continue
        model_config = stage_model(stage, preset, path)
        mesh = build.build_mesh(stage)
        plan = memory_plan.plan_stage(name, stage, model_config, mesh, work, device)
        if not plan.fits:
            fix = remedy(name, stage, model_config, mesh, work, device)
            if fix:
                plan.notes.append(fix)
        if compile_programs:
            plan.compiled = compile_stage(stage, model_config, mesh, work, plan)
            if "train_step" in plan.compiled:  # XLA's temporaries hold gradients + the rest
                plan.compiled["closed_form_activations_bytes"] = plan.activations_bytes
                plan.compiled["closed_form_prestep_bytes"] = plan.prestep_bytes
                plan.activations_bytes = max(0, plan.compiled["train_step"]["temp_bytes"] -
                                             plan.gradients_bytes)
                plan.prestep_bytes = 0
        plans.append(plan)
    if not plans:
        raise ConfigError(f"trainer: {config.trainer!r} has no stage that holds a model to plan")
    return plans


def remedy(name: str, stage: ConfigDict, model_config: ModelConfig, mesh: Any, work: Workload,
           device: str) -> str | None:
    """Overrides that make the stage fit, found by planning again: more micro-batches (then
    full remat) for the train step, a KV-cache budget for sampling, more tensor parallelism
    when the decoding weights alone do not fit or the rows do not split over the mesh."""
    prefix = f"--config.stages.{name}." if name else "--config."
    trial, changes = ConfigDict(stage.to_dict()), {}

    def again() -> Plan:
        return memory_plan.plan_stage(name, trial, model_config, mesh, work, device)

    def more_tensor() -> bool:
        nonlocal mesh
        tensor = int(mesh.shape["tensor"]) * 2
        if tensor > min(8, model_config.num_kv_heads) or jax.device_count() % tensor:
            return False
        trial.mesh.tensor, trial.mesh.fsdp = tensor, -1
        mesh = build.build_mesh(trial)
        changes.update({"mesh.tensor": tensor, "mesh.fsdp": -1})
        return True

    plan = again()
    for _ in range(6):
        usable = int(memory_plan.USABLE_FRACTION * plan.device_memory_bytes)
        if plan.fits:
            break
        if plan.blocked:
            if not more_tensor():
                break
        elif plan.train_peak_bytes > usable:
            if plan.prestep_bytes > plan.gradients_bytes + plan.activations_bytes:
                chunk = int(trial.train.logprob_chunk_size)
                if chunk <= 64:
                    break  # REMEDIES["prestep"] says what else to change
                trial.train.logprob_chunk_size = chunk // 2  # [rows, chunk, vocab] logits
                changes["train.logprob_chunk_size"] = chunk // 2
                plan = again()
                continue
            rows, micro = work.train_rows, int(trial.train.num_microbatches)
            shards = math.prod(mesh.shape[a] for a in ("data", "fsdp"))
            more = [m for m in range(micro + 1, rows // shards + 1) if rows % (m * shards) == 0]
            for m in more:
                trial.train.num_microbatches = m
                work = dataclasses.replace(work, microbatches=m)
                if again().train_peak_bytes <= usable:
                    break
            if more:
                changes["train.num_microbatches"] = m
            elif model_config.remat_policy != "full":
                trial.model.remat_policy = "full"
                model_config = model_config.replace(remat_policy="full")
                changes["model.remat_policy"] = "full"
            elif not more_tensor():
                break
        else:
            kv_total = plan.kv_cache_copies * plan.kv_cache_bytes
            budget = (usable - (plan.sampling_peak_bytes - kv_total)) // plan.kv_cache_copies
            if budget <= 0.25 * plan.kv_cache_bytes:
                if not more_tensor():
                    break
            else:
                trial.sampling.max_kv_cache_bytes = budget
                changes["sampling.max_kv_cache_bytes"] = budget
        plan = again()
    if not changes:
        return None
    if plan.fits:
        outcome = (f"fits with {gib(plan.total_bytes)} GiB, {plan.sampling_calls} sampler "
                   f"call(s) per batch")
    elif plan.prestep_bytes > plan.gradients_bytes + plan.activations_bytes:
        outcome = (f"still {gib(plan.total_bytes)} GiB, the pre-step's forward over the whole "
                   f"step batch ({gib(plan.prestep_bytes)} GiB): {REMEDIES['prestep']}")
    else:
        outcome = f"still {gib(plan.total_bytes)} GiB: needs more devices"
    return f"try {' '.join(f'{prefix}{k}={v}' for k, v in changes.items())}: {outcome}"


# ----------------------------------------------------------------------------- compiling

def _memory(compiled: Any, seconds: float) -> dict[str, Any]:
    stats = compiled.memory_analysis()
    return {"compile_seconds": round(seconds, 1),
            "argument_bytes": int(stats.argument_size_in_bytes),
            "output_bytes": int(stats.output_size_in_bytes),
            "alias_bytes": int(stats.alias_size_in_bytes),
            "temp_bytes": int(stats.temp_size_in_bytes)}


def abstract_batch(work: Workload) -> dict[str, jax.ShapeDtypeStruct]:
    """The step's batch as the one row builder (`data.rows`) makes it, one row scaled to the
    stage's rows."""
    from jaxreason.data import rows as row_builder

    if work.kind == "grpo":
        one = row_builder.completion_rows([[1]], np.ones((1, 1), np.int32), np.ones(1, np.int32),
                                          np.zeros(1, np.int32), np.zeros(1, np.float32),
                                          length=work.row_length, pad_token_id=0,
                                          sampler_logprobs=np.zeros((1, 1), np.float32))
    elif work.kind == "dpo":
        one = row_builder.pair_rows([], 1, work.row_length)
    else:
        one = row_builder.empty_rows(1, work.row_length)
    rows = work.step_rows
    return {k: jax.ShapeDtypeStruct((rows,) + v.shape[1:], v.dtype) for k, v in one.items()}


def compile_stage(stage: ConfigDict, model_config: ModelConfig, mesh: Any, work: Workload,
                  plan: Plan) -> dict[str, Any]:
    """XLA's memory analysis of the stage's train step and sampler program (per device)."""
    from jaxreason import parallel
    from jaxreason.algorithms.base import RunContext
    from jaxreason.train.state import abstract_state, state_shardings
    from jaxreason.train.step import make_train_step

    out: dict[str, Any] = {}
    optimizer, schedule, tree = memory_plan.optimizer_and_tree(stage, work)
    state = abstract_state(model_config, optimizer, mesh, tree)
    if work.train_rows:
        algorithm, checked = memory_plan.configured_algorithm(stage, work.kind)
        ctx = RunContext(checked, tempfile.gettempdir(), mesh, None, model_config)
        step = make_train_step(  # as train.run builds it
            algorithm.loss(ctx), optimizer, schedule, mesh=mesh,
            state_shardings=state_shardings(model_config, optimizer, mesh, tree),
            num_microbatches=int(stage.train.num_microbatches), pre_step=algorithm.pre_step(ctx),
            num_iterations=algorithm.num_iterations, num_minibatches=algorithm.num_minibatches)
        frozen = state.params if work.reference_model else None
        start = time.perf_counter()
        with jax.set_mesh(mesh), parallel.logical_rules(parallel.DEFAULT_RULES):
            compiled = step.jitted.lower(state, abstract_batch(work), frozen).compile()
        out["train_step"] = _memory(compiled, time.perf_counter() - start)
    if work.sample_prompts:
        policy = algorithm.policy_params(state.params) if work.train_rows else state.params
        out["sampler"] = compile_sampler(model_config, mesh, policy, work, plan)
    return out


def compile_sampler(model_config: ModelConfig, mesh: Any, params: Any, work: Workload,
                    plan: Plan) -> dict[str, Any]:
    """The sampler program of one call of the plan (rows after chunking), lowered over the
    state's abstract parameters."""
    from jaxreason.model.model import Model
    from jaxreason.sampling import Sampler, SamplingParams
    from jaxreason.sampling.engine import ProgramShape

    n = work.samples_per_prompt
    sampler = Sampler(Model(model_config, params, mesh), prompt_buckets=(work.prompt_tokens,),
                      new_token_buckets=(work.new_tokens,), pad_token_id=0)
    per_call = -(-work.sample_prompts // max(plan.sampling_calls, 1))
    shape = ProgramShape(prompts=sampler._batch_bucket(per_call, n), n=n,
                         prompt_length=work.prompt_tokens, new_tokens=work.new_tokens,
                         greedy=False, truncates=False)
    sampling = SamplingParams(n=n, max_new_tokens=work.new_tokens)
    inputs = sampler._inputs([[1]] * per_call, sampling, shape)  # token ids only: small
    start = time.perf_counter()
    with sampler.model.context():
        compiled = sampler._program.lower(params, model_config, shape, sampler.model.rules,
                                          inputs).compile()
    return _memory(compiled, time.perf_counter() - start)


# ----------------------------------------------------------------------------- report

def gib(n: int) -> str:
    return f"{n / 2**30:,.1f}"


def verdict(plan: Plan) -> str:
    """One line: fits or not, the peak against the device, and what to change."""
    name = plan.stage or plan.kind
    usable = memory_plan.USABLE_FRACTION * plan.device_memory_bytes
    if plan.blocked:
        return f"{name}: DOES NOT RUN on mesh {plan.mesh}: {plan.blocked}"
    head = (f"{name}: {'FITS' if plan.fits else 'DOES NOT FIT'} on {plan.device} "
            f"({gib(plan.total_bytes)} of {gib(int(usable))} usable GiB per device, mesh "
            f"{'x'.join(str(v) for v in plan.mesh.values())})")
    phase = ("sampling" if plan.sampling_peak_bytes >= plan.train_peak_bytes else "train step")
    terms = plan.terms()
    if phase == "train step":
        terms = {k: v for k, v in terms.items() if k not in ("decode_weights", "kv_cache")}
        if terms["prestep"] > terms["gradients"] + terms["activations"]:
            terms.pop("gradients"), terms.pop("activations")
        else:
            terms.pop("prestep")
    else:
        terms = {k: v for k, v in terms.items()
                 if k not in ("gradients", "activations", "prestep")}
        terms["kv_cache"] *= plan.kv_cache_copies
    top = max(terms, key=terms.get)
    if plan.fits:
        return f"{head}; peak in the {phase}, largest term {top} ({gib(terms[top])} GiB)"
    return (f"{head}; peak in the {phase}, dominated by {top} ({gib(terms[top])} GiB): "
            f"change {REMEDIES[top]}")


def table(plans: list[Plan]) -> str:
    """Per-device GiB of every term, one column per stage."""
    names = [p.stage or p.kind for p in plans]
    rows = [("mesh (data x fsdp x tensor)",
             ["x".join(str(v) for v in p.mesh.values()) for p in plans])]
    for key in ("params", "optimizer", "gradients", "activations", "prestep", "reference",
                "decode_weights", "kv_cache"):
        rows.append((f"{key} GiB", [gib(p.terms()[key]) for p in plans]))
    rows += [("sampler planned", [p.sampler or "-" for p in plans]),
             ("KV cache copies in a decode step", [str(p.kv_cache_copies) for p in plans]),
             ("sampler calls per batch", [str(p.sampling_calls) for p in plans]),
             ("train-step peak GiB", [gib(p.train_peak_bytes) for p in plans]),
             ("sampling peak GiB", [gib(p.sampling_peak_bytes) for p in plans]),
             ("total (peak) GiB", [gib(p.total_bytes) for p in plans]),
             (f"device GiB ({plans[0].device})", [gib(p.device_memory_bytes) for p in plans]),
             ("fits", ["yes" if p.fits else "NO" for p in plans]),
             ("largest buffer", [f"{p.largest_buffer[0]} {gib(p.largest_buffer[1])}"
                                 for p in plans])]
    for program in ("train_step", "sampler"):
        if any(program in p.compiled for p in plans):
            for field in ("compile_seconds", "temp_bytes", "argument_bytes"):
                rows.append((f"XLA {program} {field.replace('_bytes', ' GiB')}",
                             [("-" if program not in p.compiled else
                               str(p.compiled[program][field]) if field == "compile_seconds"
                               else gib(p.compiled[program][field])) for p in plans]))
    width = max(len(r[0]) for r in rows)
    cols = [max(len(n), *(len(r[1][i]) for r in rows)) for i, n in enumerate(names)]
    lines = ["".ljust(width) + "  " + "  ".join(n.rjust(c) for n, c in zip(names, cols))]
    for label, values in rows:
        lines.append(label.ljust(width) + "  " + "  ".join(v.rjust(c)
                                                           for v, c in zip(values, cols)))
    return "\n".join(lines)


def summary(plans: list[Plan]) -> dict[str, Any]:
    """The JSON line: the figures of the stage with the highest peak, and every stage."""
    worst = max(plans, key=lambda p: p.total_bytes)
    out = worst.as_json()
    out["fits"] = all(p.fits for p in plans)
    out["stages"] = {p.stage or p.kind: p.as_json() for p in plans}
    return out


def dry_run(config: ConfigDict, device: str, *, compile_programs: bool = False) -> dict[str, Any]:
    """Plan, print the table, the verdicts and the JSON line; returns the JSON object."""
    plans = plan_recipe(config, device, compile_programs=compile_programs)
    print(f"memory plan per device, {jax.device_count()} {jax.devices()[0].platform} devices "
          f"({'compiled and closed form' if compile_programs else 'closed form'})")
    print(table(plans))
    for plan in plans:
        print(verdict(plan))
        for note in plan.notes:
            print(f"  note: {note}")
    skipped = unplanned_stages(config)
    if skipped:
        print(f"not planned: {', '.join(skipped)} (no model, or batches that follow the "
              f"search trees; search's sampler is bounded by sampling.max_kv_cache_bytes and "
              f"search.max_leaves_per_call)")
    result = summary(plans)
    print(json.dumps(result, sort_keys=True))
    return result
