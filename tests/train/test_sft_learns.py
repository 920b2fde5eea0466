"""The tiny Countdown recipe learns: SFT loss falls and the model then solves held-out
instances (greedy decoding, graded by the Countdown task). Minutes on a CPU: marked slow."""

import json

import pytest

import train_runs as runs


@pytest.mark.slow
def test_tiny_countdown_recipe_lowers_loss_and_solves_held_out_instances(tmp_path):
    result = runs.run(tmp_path, config=runs.REPO / "configs" / "sft_countdown_tiny.py",
                      timeout=1800)
    assert result.returncode == 0, result.stderr[-4000:]
    records = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    first = sum(r["loss"] for r in train[:5]) / 5
    last = sum(r["loss"] for r in train[-10:]) / 10
    assert last < first / 4, (first, last)
    final = evals[-1]
    assert final["num_examples"] == 200
    assert final["answer_rate"] > 0.9  # it learned the format
    assert final["accuracy"] >= 0.05  # and solves a measurable share of unseen instances
