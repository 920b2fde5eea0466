"""The SRL comparison report reads a pipeline's files: the hard split, each arm's end-to-end
evaluation, and its training trends and curves (written here by hand, no training)."""

from __future__ import annotations

import json

from jaxreason.train import srl_report


def _write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _workdir(tmp_path):
    (tmp_path / "hard").mkdir()
    (tmp_path / "hard" / "summary.json").write_text(json.dumps({
        "status": "completed", "outputs": {}, "num_records": 10, "samples_per_record": 8,
        "pass@8": 0.4, "num_hard": 6, "num_train": 4, "num_held_out": 2}))
    for arm, greedy in (("sft", 0.0), ("srl", 0.5)):
        (tmp_path / f"eval_{arm}").mkdir()
        (tmp_path / f"eval_{arm}" / "report.json").write_text(json.dumps({
            "meta": {"seed": 3}, "benchmarks": {"countdown_test": {
                "num_items": 2, "greedy_accuracy": {"value": greedy},
                "pass@1_mean": {"value": greedy / 2}, "pass@8": {"value": 1.0}}}}))
    # 12 SRL steps: similarity 0.1 * step, step 3 with no well-formed completion (its 0.0 is
    # left out of the means); the filter drops half the groups in steps 1-10, none after
    train = [{"kind": "train", "step": s, "reward_mean": 0.1 * s,
              "reward_mean_format_ok": 0.0 if s == 3 else 0.1 * s,
              "format_ok_fraction": 0.0 if s == 3 else 1.0,
              "groups_filtered_fraction": 0.5 if s <= 10 else 0.0, "accuracy": 0.0}
             for s in range(1, 13)]
    evals = [{"kind": "eval", "step": s, "mean_reward": 0.5 + 0.01 * s, "accuracy": 0.0}
             for s in (0, 10, 12)]
    # a resumed run logs a step twice: the last record of a step counts
    _write_jsonl(tmp_path / "srl" / "metrics.jsonl",
                 [{"kind": "event", "step": 0}] + train[:2] + [dict(train[1], reward_mean=9.0)]
                 + train[2:] + evals)
    return tmp_path


def test_report_reads_the_split_the_evaluations_and_the_curves(tmp_path):
    result = srl_report.report(str(_workdir(tmp_path)), window=5)
    assert result["seed"] == 3
    assert result["hard"]["num_hard"] == 6 and "outputs" not in result["hard"]
    srl = result["arms"]["srl"]
    assert srl["eval"] == {"items": 2, "greedy_accuracy": 0.5, "pass@1_mean": 0.25,
                           "pass@8": 1.0}
    assert srl["steps"] == 12
    sim = srl["reward_mean_format_ok"]
    # the first 5 steps that had well-formed completions: step 3 is skipped
    assert abs(sim["first5"] - (0.1 + 0.2 + 0.4 + 0.5 + 0.6) / 5) < 1e-9
    assert abs(sim["last5"] - (0.8 + 0.9 + 1.0 + 1.1 + 1.2) / 5) < 1e-9
    # step 2 was logged twice: its last record (9.0) counts
    assert abs(srl["reward_mean"]["first5"] - (0.1 + 9.0 + 0.3 + 0.4 + 0.5) / 5) < 1e-9
    curves = srl["curves"]
    assert curves["window"] == 5
    # windows of steps 1-5 (step 3 left out), 6-10, 11-12
    assert [round(v, 6) for v in curves["reward_mean_format_ok"]] == [0.3, 0.8, 1.15]
    assert curves["groups_filtered_fraction"] == [0.5, 0.5, 0.0]
    assert [(r["step"], r["mean_reward"]) for r in curves["eval"]] == [
        (0, 0.5), (10, 0.6), (12, 0.62)]
    assert srl["in_training_eval"]["start"] == 0.5 and srl["in_training_eval"]["end"] == 0.62
    # arms that did not run: no training figures, no evaluation
    assert result["arms"]["rlvr"] == {"eval": {}}
    assert result["arms"]["sft"]["eval"]["greedy_accuracy"] == 0.0

    text = srl_report.markdown(result)
    assert "pass@8 0.400 of 10 candidate problems" in text
    assert "| srl | 0.500 | 0.250 | 1.000 | 12 | 0.500 -> 0.300 |" in text
    assert ("- srl: reward of well-formed 0.300 0.800 1.150; groups filtered 0.500 0.500 "
            "0.000; held-out 0: 0.500 10: 0.600 12: 0.620") in text
