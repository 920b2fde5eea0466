"""Behaviors over a run's checkpoints: counts per step from the in-training evaluations, their
correlation with accuracy, the plot; and behavior averages in an evaluation report."""

import json

import pytest

from jaxreason import behaviors
from jaxreason.evaluation.behavior_report import write_behavior_report
from jaxreason.evaluation.report import figures

BACKTRACK = ("Let's try 3 + 5 = 8. 8 is not 21. This doesn't work, let's try a different "
             "combination. ")
SOLVE = "3 * 5 = 15. 15 + 6 = 21. <answer>3 * 5 + 6</answer>"


def _write_step(run, stage, step, completions, correct):
    directory = run / stage / "eval" / f"step_{step}"
    directory.mkdir(parents=True)
    with open(directory / "items.jsonl", "w") as f:
        for i, (text, ok) in enumerate(zip(completions, correct)):
            f.write(json.dumps({"index": i, "batch": 0, "record": {},
                                "greedy": {"completion": text, "correct": ok}}) + "\n")


def test_backtracks_that_grow_with_accuracy_correlate(tmp_path):
    run = tmp_path / "run"
    for step, (backtracks, solved) in enumerate([(0, 1), (1, 2), (2, 3), (3, 4)]):
        texts = [BACKTRACK * backtracks + SOLVE] * 4
        _write_step(run, "grpo", step * 20, texts, [i < solved for i in range(4)])
    report = write_behavior_report(str(run), "countdown", str(tmp_path / "out"))
    points = report["points"]
    assert [p["step"] for p in points] == [0, 20, 40, 60]
    assert [p["accuracy"] for p in points] == [0.25, 0.5, 0.75, 1.0]
    per_trace = behaviors.count(BACKTRACK * 2 + SOLVE, "countdown")["backtracking"]
    assert per_trace >= 2
    assert points[2]["backtracking"] == pytest.approx(per_trace)
    assert report["pearson_with_accuracy"]["backtracking"] > 0.95
    assert (tmp_path / "out" / "behaviors.png").stat().st_size > 1000
    saved = json.loads((tmp_path / "out" / "behaviors.json").read_text())
    assert saved["pearson_with_accuracy"]["backtracking"] == pytest.approx(
        report["pearson_with_accuracy"]["backtracking"])


def test_report_figures_carry_behavior_means_for_a_domain():
    items = [{"greedy": {"completion": BACKTRACK + SOLVE, "correct": True, "tokens": 10}},
             {"greedy": {"completion": SOLVE, "correct": False, "tokens": 5}}]
    figs = figures(items, domain="countdown")
    expected = behaviors.average(behaviors.count_many([BACKTRACK + SOLVE, SOLVE], "countdown"))
    assert figs["behaviors"] == expected and set(expected) == set(behaviors.KEYS)
    assert "behaviors" not in figures(items)
