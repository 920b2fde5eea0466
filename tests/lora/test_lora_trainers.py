"""LoRA by config in the trainers, through the launcher: GRPO samples from base + adapters
(unmerged) with the same log-probs the training forward computes, its KL reference is the
frozen base itself (zero at the start), it exports merged + PEFT, and evaluation restores its
adapters-only checkpoint onto the base; DPO's reference pass runs the same model at step 0
(margin 0) and the adapters then move the policy; PPO trains actor and critic adapters and
the value head."""

import json
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest
from ml_collections import ConfigDict

from jaxreason import parallel
from jaxreason.model import lora
from jaxreason.model.model import load_pretrained
from jaxreason.train import eval_suite

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "rl"))
sys.path.insert(0, str(HERE.parent / "preference"))

import dpo_runs  # noqa: E402
import grpo_runs  # noqa: E402

LORA = ["--config.model.lora.rank=4", "--config.model.lora.alpha=8.0"]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return grpo_runs.toy_data(tmp_path_factory.mktemp("toy"))


def test_grpo_with_lora_samples_unmerged_and_references_its_base(tmp_path, toy):
    result = grpo_runs.run(tmp_path, *toy, *LORA, "--config.train.num_steps=3",
                           "--config.grpo.beta=0.05", "--config.checkpoint.every=3")
    assert result.returncode == 0, result.stderr[-3000:]
    records = grpo_runs.train_records(tmp_path)
    assert sorted(records) == [1, 2, 3]
    for record in records.values():
        assert record["logprob_gap_sampler"] < 1e-4  # sampler (fused layout) = training forward
    assert abs(records[1]["kl"]) < 1e-6  # B = 0 at the start: policy = reference = base
    assert (tmp_path / "export" / "config.json").exists()
    adapter = json.loads((tmp_path / "export" / "adapter" / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and adapter["lora_alpha"] == 8.0
    # The Orbax checkpoint holds adapters only; evaluation rebuilds the model by putting them
    # on the run's base (a preset: redrawn from the seed): merged, it is the exported model.
    mesh = parallel.make_mesh(devices=jax.devices()[:1])
    restored, _ = eval_suite._restore_run(str(tmp_path), ConfigDict(
        {"tokenizer": {"path": None}, "model": {"dtype": "float32"}}), mesh)
    assert restored.config.lora is not None
    merged = lora.merged(restored.params, restored.config)
    exported = load_pretrained(tmp_path / "export").params
    for a, b in zip(jax.tree.leaves(merged), jax.tree.leaves(exported)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


@pytest.mark.slow
def test_dpo_with_lora_trains_the_adapters(tmp_path):
    data = dpo_runs.write_jsonl(tmp_path / "pairs.jsonl", dpo_runs.toy_pairs())
    result = dpo_runs.run(tmp_path / "run", f"--config.data.train={data}", *LORA,
                          "--config.train.num_steps=4", "--config.optim.learning_rate=1e-2")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = dpo_runs.train_metrics(tmp_path / "run")
    margins = [metrics[s]["reward_margin"] for s in sorted(metrics)]
    assert margins[0] == pytest.approx(0.0, abs=1e-6)  # step 1: policy = reference
    assert max(abs(m) for m in margins[1:]) > 1e-4  # then the adapters have moved it


@pytest.mark.slow
def test_ppo_with_lora_trains_actor_and_critic_adapters_and_the_head(tmp_path, toy):
    command = grpo_runs.runs.command(tmp_path, *toy, *LORA, "--config.train.num_steps=3",
                                     config=HERE.parent / "rl" / "tiny_ppo_config.py")
    result = subprocess.run(command, env=grpo_runs.env(), capture_output=True, text=True,
                            timeout=1800, cwd=grpo_runs.runs.REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    records = grpo_runs.train_records(tmp_path)
    assert sorted(records) == [1, 2, 3]
    assert all(r["logprob_gap_sampler"] < 1e-4 for r in records.values())
    saved = json.loads(next((tmp_path / "checkpoints").glob("*/state/_METADATA")).read_text())
    params = sorted(k for k in saved["tree_metadata"] if k.startswith("('params'"))
    assert all("'lora'" in k or "'head'" in k for k in params), params
    assert any("'value', 'head'" in k for k in params)
    assert (tmp_path / "export" / "adapter").is_dir() and (tmp_path / "export_value").is_dir()
