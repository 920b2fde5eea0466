"""A run killed (SIGKILL) or preempted (SIGTERM) and started again on the same workdir ends
exactly where an uninterrupted run ends: same parameters, same data order."""

import json

import pytest

import train_runs as runs


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return runs.write_arithmetic_data(tmp_path_factory.mktemp("data") / "train.jsonl")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data):
    workdir = tmp_path_factory.mktemp("uninterrupted")
    result = runs.run(workdir, f"--config.data.train={data}")
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


def _check_same_as_reference(workdir, reference):
    runs.assert_same_params(runs.exported_params(workdir), runs.exported_params(reference),
                            atol=1e-6)
    order, expected = runs.data_order(workdir), runs.data_order(reference)
    assert sorted(order) == sorted(expected) == list(range(1, 41))
    assert order == expected


def test_uninterrupted_run_writes_metrics_checkpoints_tensorboard_and_export(reference):
    records = [json.loads(l) for l in (reference / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == list(range(1, 41))
    for key in ("loss", "grad_norm", "learning_rate", "tokens", "loss_tokens"):
        assert all(key in r for r in train)
    timed = [r["step"] for r in train if "tokens_per_second" in r and "step_time" in r]
    assert len(timed) >= 25  # all but the steps right after compilation / a checkpoint pause
    assert train[-1]["loss"] < train[0]["loss"]
    assert runs.checkpoint_steps(reference) == [36, 40]  # max_to_keep=2, every 4 + the end
    assert list((reference / "tensorboard").glob("events.out.tfevents.*"))
    assert (reference / "export" / "config.json").exists()
    assert (reference / "export" / "tokenizer.json").exists()
    assert (reference / "tokenizer" / "tokenizer.json").exists()


def test_sigkill_then_restart_ends_with_the_uninterrupted_parameters(tmp_path, data, reference):
    process = runs.start(tmp_path, f"--config.data.train={data}")
    killed_at = runs.signal_after_step(process, tmp_path, 10, runs.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -runs.SIGKILL
    assert not (tmp_path / "export").exists()  # it really died mid-run
    saved = runs.checkpoint_steps(tmp_path)
    assert saved and max(saved) < 40, (killed_at, saved)

    result = runs.run(tmp_path, f"--config.data.train={data}")
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = [e for e in runs.events(tmp_path) if e["event"] == "resumed"]
    assert resumed and 0 < resumed[-1]["step"] < 40
    runs.assert_resumed_without_repeating(tmp_path, 40)
    _check_same_as_reference(tmp_path, reference)


def test_sigterm_saves_exits_cleanly_and_resumes_exactly(tmp_path, data, reference):
    process = runs.start(tmp_path, f"--config.data.train={data}")
    runs.signal_after_step(process, tmp_path, 6, runs.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr
    preempted = [e for e in runs.events(tmp_path) if e["event"] == "preempted"]
    assert len(preempted) == 1
    step = preempted[0]["step"]
    assert 6 <= step < 40 and step in runs.checkpoint_steps(tmp_path)  # saved right there
    assert not (tmp_path / "export").exists()

    result = runs.run(tmp_path, f"--config.data.train={data}")
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = [e for e in runs.events(tmp_path) if e["event"] == "resumed"]
    assert resumed[-1]["step"] == step
    runs.assert_resumed_without_repeating(tmp_path, 40)
    _check_same_as_reference(tmp_path, reference)
