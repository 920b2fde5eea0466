"""The dpo trainer end to end on toy pairs (launcher subprocesses, one CPU device): the
reference log-probs are computed once, before the first step, stored, and not recomputed when
the run resumes; DPO raises the reward margin of the toy preferences."""

import json

import pytest

import dpo_runs

COMPUTED = "dpo: computing the reference log-probs"


def test_reference_logprobs_computed_once_and_stored(tmp_path):
    pairs = dpo_runs.write_jsonl(tmp_path / "pairs.jsonl", dpo_runs.toy_pairs())
    workdir = tmp_path / "run"
    first = dpo_runs.run(workdir, f"--config.data.train={pairs}", "--config.train.num_steps=4",
                         "--config.checkpoint.every=2")
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stderr.count(COMPUTED) == 1
    stored = [json.loads(x) for x in (workdir / "pairs_with_reference.jsonl").read_text()
              .splitlines()]
    assert len(stored) == 48 and stored[0]["where"] == f"{pairs}:1"
    # the stored values are the starting weights' log-probs: at step 1 the policy is the
    # reference, so the loss's own log-probs equal them (DPO loss log 2, margin 0)
    step1 = dpo_runs.train_metrics(workdir)[1]
    assert step1["chosen_logp"] == pytest.approx(step1["ref_chosen_logp"], abs=1e-4)
    assert step1["rejected_logp"] == pytest.approx(step1["ref_rejected_logp"], abs=1e-4)
    assert step1["dpo_loss"] == pytest.approx(0.693147, abs=1e-4)
    # resuming (more steps, same workdir) reads them instead of computing them again
    second = dpo_runs.run(workdir, f"--config.data.train={pairs}", "--config.train.num_steps=6",
                          "--config.checkpoint.every=2")
    assert second.returncode == 0, second.stderr[-2000:]
    assert COMPUTED not in second.stderr and "read from" in second.stderr
    assert max(dpo_runs.train_metrics(workdir)) == 6
    assert [json.loads(x) for x in (workdir / "pairs_with_reference.jsonl").read_text()
            .splitlines()] == stored


def test_bad_pair_file_fails_before_training_naming_line_and_field(tmp_path):
    pairs = dpo_runs.toy_pairs(8)
    pairs[5] = {"prompt": pairs[5]["prompt"], "chosen": pairs[5]["chosen"], "rejected": ""}
    path = dpo_runs.write_jsonl(tmp_path / "pairs.jsonl", pairs)
    result = dpo_runs.run(tmp_path / "run", f"--config.data.train={path}")
    assert result.returncode != 0
    assert f"{path}:6: field 'rejected' is empty" in result.stderr


@pytest.mark.slow
def test_dpo_raises_the_margin_on_toy_pairs(tmp_path):
    pairs = dpo_runs.write_jsonl(tmp_path / "pairs.jsonl", dpo_runs.toy_pairs())
    workdir = tmp_path / "run"
    result = dpo_runs.run(workdir, f"--config.data.train={pairs}", "--config.dpo.alpha=0.0",
                          "--config.dpo.beta=0.5", "--config.train.num_steps=40")
    assert result.returncode == 0, result.stderr[-2000:]
    m = dpo_runs.train_metrics(workdir)
    assert m[1]["reward_margin"] == pytest.approx(0.0, abs=1e-4)
    assert m[40]["reward_margin"] > 1.0 and m[40]["reward_accuracy"] == 1.0
    assert m[40]["loss"] < 0.3
