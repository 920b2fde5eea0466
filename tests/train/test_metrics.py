"""Metric writers and the MFU estimate."""

import json

import pytest

from jaxreason.train.metrics import MetricsWriter, Throughput, mfu, peak_flops, read_metrics


@pytest.mark.parametrize("kind,tflops", [
    ("NVIDIA H100 80GB HBM3", 989), ("NVIDIA H200", 989), ("NVIDIA A100-SXM4-80GB", 312),
    ("TPU v4", 275), ("TPU v5 lite", 197), ("TPU v5p", 459), ("TPU v6 lite", 918)])
def test_peak_flops_table_matches_the_chips_bf16_dense_peaks(kind, tflops):
    assert peak_flops(kind) == tflops * 1e12


def test_mfu_is_model_flops_over_peak_and_unknown_on_cpu():
    assert mfu(6e9, 1000.0, 8, "TPU v4") == pytest.approx(6e12 / (8 * 275e12))
    assert mfu(6e9, 1000.0, 1, "cpu") is None


def test_writer_appends_jsonl_records_and_tensorboard_events(tmp_path):
    writer = MetricsWriter(str(tmp_path), total_steps=3, summary_every=2, progress=False)
    writer.write(1, {"loss": 2.0, "grad_norm": float("nan")})
    writer.write(2, {"loss": 1.5})
    writer.event(2, "resumed", checkpoint=2)
    writer.write(2, {"loss": 1.25})  # a resumed run logs the step again: the last one counts
    writer.write(2, {"accuracy": 0.5}, kind="eval")
    writer.close()
    lines = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [l["kind"] for l in lines] == ["train", "train", "event", "train", "eval"]
    assert lines[0]["grad_norm"] == "nan"  # still valid JSON
    assert read_metrics(str(tmp_path))[2]["loss"] == 1.25
    assert read_metrics(str(tmp_path), "eval")[2]["accuracy"] == 0.5
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_writer_on_other_processes_writes_nothing(tmp_path):
    writer = MetricsWriter(str(tmp_path / "w"), total_steps=1, enabled=False)
    writer.write(1, {"loss": 1.0})
    writer.close()
    assert not (tmp_path / "w").exists()


def test_throughput_reports_after_the_first_step_and_after_reset():
    clock = Throughput(flops_per_token=1e9, num_devices=1, device_kind="NVIDIA H100")
    assert clock.update(100) == {}
    second = clock.update(100)
    assert second["tokens_per_second"] > 0 and "mfu" in second and "step_time" in second
    clock.reset()
    assert clock.update(100) == {}
