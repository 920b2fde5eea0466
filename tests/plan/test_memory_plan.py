"""The memory plan: state bytes per device equal the closed form from the parameter count and
the mesh (64 simulated devices, 8B and 70B presets), KV-cache bytes equal the closed form,
the launcher's `--dry_run` ends with the JSON line, and a KV-cache budget splits sampling."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from jaxreason.model.config import preset_config

REPO = pathlib.Path(__file__).resolve().parents[2]
KEYS = ("params_bytes", "optimizer_bytes", "gradients_bytes", "activations_bytes",
        "kv_cache_bytes", "total_bytes", "device_memory_bytes", "fits")


def _dry_run(recipe, devices, *overrides):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run(
        [sys.executable, "launch/train.py", f"--config=configs/{recipe}.py", "--dry_run",
         f"--dry_run_devices={devices}", *overrides],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    return lines, json.loads(lines[-1])


@pytest.fixture(scope="module")
def astro_70b():
    """ASTRO's GRPO recipe (Llama-3.1-70B, mesh fsdp=8 x tensor=8) on 64 simulated devices."""
    return _dry_run("astro_rl_llama3_70b", 64, "--config.model.preset=llama-3.1-70b",
                    "--dry_run_device=h200")


@pytest.fixture(scope="module")
def sft_8b():
    """The Llama-3.1-8B SFT recipe (fsdp over all 64 devices) with tensor=4 instead."""
    return _dry_run("sft_llama3_8b_math", 64, "--config.model.preset=llama-3.1-8b",
                    "--config.mesh.tensor=4")


@pytest.mark.parametrize("which, preset, microbatches", [("astro_70b", "llama-3.1-70b", 16),
                                                         ("sft_8b", "llama-3.1-8b", 1)])
def test_state_bytes_per_device_are_the_closed_form(which, preset, microbatches, request):
    _, plan = request.getfixturevalue(which)
    assert set(KEYS) <= set(plan)
    fp32_per_device = preset_config(preset).num_params * 4 / 64
    assert plan["params_bytes"] == pytest.approx(fp32_per_device, rel=0.01)
    assert plan["optimizer_bytes"] == pytest.approx(2 * fp32_per_device, rel=0.01)  # Adam m, v
    # gradients: one copy, two with micro-batches (the accumulator and one micro-batch's)
    copies = 2 if microbatches > 1 else 1
    assert plan["gradients_bytes"] == pytest.approx(copies * fp32_per_device, rel=0.01)


def test_kv_cache_bytes_are_the_closed_form(astro_70b):
    """256 prompts x (1024 shared prompt slots + 4 samples x 8192 new slots) x 80 layers x
    8 kv heads x 128 x (k, v) x bf16 (320 KB per token, about 2.8 TB), split over the 64
    devices: the 4 samples of a prompt share its 1024 prompt slots."""
    _, plan = astro_70b
    per_token = 80 * 8 * 128 * 2 * 2
    assert per_token == 327_680
    tokens = 256 * (1024 + 4 * 8192)
    assert plan["kv_cache_bytes"] == pytest.approx(per_token * tokens / 64, rel=1e-3)


def test_dry_run_prints_a_table_and_a_verdict_naming_what_to_change(astro_70b):
    lines, plan = astro_70b
    text = "\n".join(lines)
    assert "kv_cache GiB" in text and "activations GiB" in text
    assert plan["device"] == "h200" and plan["device_memory_bytes"] == 141 * 10**9
    assert plan["total_bytes"] == max(plan["train_peak_bytes"], plan["sampling_peak_bytes"])
    if not plan["fits"]:
        verdict = next(line for line in lines if "DOES NOT FIT" in line)
        assert "dominated by" in verdict and "change" in verdict
        assert any("--config." in line for line in lines if "note: try" in line)


def _grpo_stage(**grpo):
    sys.path.insert(0, str(REPO))
    from configs import base

    c = base.get_config()
    c.trainer = "grpo"
    c.grpo.task = "math"
    c.model.dtype = "bfloat16"
    c.grpo.update(dict(prompts_per_step=64, group_size=8, max_prompt_tokens=512,
                       max_new_tokens=3584, **grpo))
    return c


def test_kv_budget_splits_sampling_into_calls_that_fit():
    """With `sampling.max_kv_cache_bytes`, the plan's cache is one call's (the sampler's own
    chunk rule) and the batch takes several calls."""
    from jaxreason.parallel import make_mesh
    from jaxreason.train import memory_plan

    mesh = make_mesh(1, -1, 2)
    model = preset_config("qwen2.5-1.5b", dtype="bfloat16", param_dtype="float32")
    stage = _grpo_stage()
    work = memory_plan.workload(stage)
    whole = memory_plan.plan_stage("", stage, model, mesh, work, "h100-80gb")
    assert whole.sampling_calls == 1
    stage.sampling.max_kv_cache_bytes = whole.kv_cache_bytes // 3
    chunked = memory_plan.plan_stage("", stage, model, mesh, work, "h100-80gb")
    assert chunked.kv_cache_bytes <= stage.sampling.max_kv_cache_bytes
    assert chunked.sampling_calls == 4  # 64 prompts, 16 per call (a power of two)
    assert chunked.kv_cache_bytes == pytest.approx(whole.kv_cache_bytes / 4, rel=1e-6)
    assert chunked.params_bytes == whole.params_bytes


def test_plan_counts_a_reference_model_and_the_pre_step():
    from jaxreason.parallel import make_mesh
    from jaxreason.train import memory_plan

    mesh = make_mesh(1, -1, 1)
    model = preset_config("llama-3.2-1b", dtype="bfloat16", param_dtype="float32")
    plain = memory_plan.plan_stage("", _grpo_stage(), model, mesh,
                                   memory_plan.workload(_grpo_stage()), "tpu-v5p")
    kl = _grpo_stage(beta=0.04)
    with_ref = memory_plan.plan_stage("", kl, model, mesh, memory_plan.workload(kl), "tpu-v5p")
    assert plain.reference_bytes == 0 and plain.prestep_bytes == 0
    assert with_ref.reference_bytes == with_ref.params_bytes
    assert with_ref.prestep_bytes > 0
    assert with_ref.train_peak_bytes > plain.train_peak_bytes


def test_unknown_device_is_a_config_error():
    from jaxreason.parallel import make_mesh
    from jaxreason.train import memory_plan
    from jaxreason.train.errors import ConfigError

    stage = _grpo_stage()
    with pytest.raises(ConfigError, match="dry_run_device"):
        memory_plan.plan_stage("", stage, preset_config("llama-3.2-1b"), make_mesh(),
                               memory_plan.workload(stage), "a100")


def test_lora_plan_counts_adapter_only_optimizer_state():
    """With `model.lora.rank > 0` only the adapters train: Adam moments and gradients are the
    adapters', the frozen base is held in the compute dtype."""
    from jaxreason.model.lora import num_adapter_params
    from jaxreason.parallel import make_mesh
    from jaxreason.train import build, memory_plan

    sys.path.insert(0, str(REPO))
    from configs import sft_llama3_8b_math

    stage = sft_llama3_8b_math.get_config()
    stage.model.path, stage.model.preset, stage.model.lora.rank = None, "llama-3.1-8b", 16
    model = build.build_model_config(stage, None)
    mesh = make_mesh(1, -1, 1)
    plan = memory_plan.plan_stage("", stage, model, mesh, memory_plan.workload(stage), "h100-80gb")
    adapters = num_adapter_params(model)
    assert plan.optimizer_bytes == pytest.approx(2 * adapters * 4 / 8, rel=0.01)
    assert plan.gradients_bytes == pytest.approx(adapters * 4 / 8, rel=0.01)
    base = preset_config("llama-3.1-8b").num_params
    assert plan.params_bytes == pytest.approx((base * 2 + adapters * 4) / 8, rel=0.01)


def test_stage_override_of_a_key_the_recipe_stage_lacks_applies_to_that_stage_only():
    """`--config.stages.srl.model.remat_policy=full`: the srl stage of the SRL recipe lists no
    `model` section, but any base key is a stage override; the dry run's own `note: try`
    lines print such keys, so they must work as typed (and only for that stage)."""
    args = ("--config.model.preset=qwen2.5-7b", "--dry_run_device=h100-80gb")
    _, shipped = _dry_run("srl_qwen25_7b_s1k", 8, *args)
    _, changed = _dry_run("srl_qwen25_7b_s1k", 8, *args,
                          "--config.stages.srl.model.remat_policy=full",
                          "--config.stages.srl.train.num_microbatches=16")
    srl, rlvr = changed["stages"]["srl"], changed["stages"]["rlvr"]
    assert srl["activations_bytes"] < shipped["stages"]["srl"]["activations_bytes"] / 4
    assert rlvr == shipped["stages"]["rlvr"]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    bad = subprocess.run(
        [sys.executable, "launch/train.py", "--config=configs/srl_qwen25_7b_s1k.py", "--dry_run",
         "--dry_run_devices=8", *args, "--config.stages.srl.train.num_microbatches=many"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert bad.returncode != 0
    assert "stages.srl.train.num_microbatches" in bad.stderr and "'many'" in bad.stderr
