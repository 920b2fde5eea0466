"""ARC grader: label extraction, label normalization, choice-text fallback, real ARC files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jaxreason.tasks import get
from jaxreason.tasks.arc import normalize_label

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

RECORD = {
    "id": "Mercury_SC_415702",
    "question": {
        "stem": "George wants to warm his hands quickly by rubbing them. Which skin surface will produce the most heat?",
        "choices": [
            {"text": "dry palms", "label": "A"},
            {"text": "wet palms", "label": "B"},
            {"text": "palms covered with oil", "label": "C"},
            {"text": "palms covered with lotion", "label": "D"},
        ],
    },
    "answerKey": "A",
}
NUMERIC = {
    "id": "n",
    "question": {"stem": "Pick", "choices": [{"text": "one", "label": "1"}, {"text": "two", "label": "2"}]},
    "answerKey": "2",
}


def _records(name: str) -> list[dict]:
    path = DATA / "arc" / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    return [json.loads(line) for line in path.open()]


@pytest.mark.parametrize(
    "completion",
    [
        "Final answer: (A)",
        "Final answer: A",
        "Rubbing dry skin creates friction. The answer is (A).",
        "The answer is: a",
        "The answer is **A**",
        "So \\boxed{A}",
        "\\boxed{\\text{(A)}}",
        "Answer: A",
        "I pick (A)",
        "dry palms",
        "The answer is Dry palms.",
        "A",
    ],
)
def test_label_formats_are_extracted(completion):
    grade = get("arc").grade(RECORD, completion)
    assert (grade.correct, grade.extracted) == (True, "A"), grade


@pytest.mark.parametrize(
    "completion, extracted",
    [
        ("The answer is (B).", "B"),
        ("A plant needs water.", None),  # the article "A" is not a label
        ("The answer is (E).", "E"),  # not a choice of this item
        ("palms", None),  # not a whole choice text
        ("I am not sure.", None),
        ("The answer is (A). Wait, no: the answer is (C).", "C"),  # the last statement wins
    ],
)
def test_wrong_or_missing_labels_are_wrong(completion, extracted):
    grade = get("arc").grade(RECORD, completion)
    assert not grade.correct
    assert grade.extracted == extracted


def test_numeric_labels_are_shown_and_graded_as_letters():
    task = get("arc")
    assert normalize_label("2") == "B" and normalize_label("c") == "C"
    assert task.gold_answer(NUMERIC) == "B"
    assert "(A) one\n(B) two" in task.prompt(NUMERIC)
    assert task.grade(NUMERIC, "The answer is (B)").correct
    assert task.grade(NUMERIC, "two").correct
    assert not task.grade(NUMERIC, "The answer is (A)").correct


def test_hugging_face_layout_is_read_too():
    record = {
        "id": "Mercury_SC_415702",
        "question": "Which skin surface will produce the most heat?",
        "choices": {"text": ["dry palms", "wet palms"], "label": ["A", "B"]},
        "answerKey": "A",
    }
    task = get("arc")
    assert task.prompt(record).startswith("Question: Which skin surface")
    assert task.grade(record, "dry palms").correct
    assert not task.grade(record, "The answer is (B)").correct


def test_choice_text_fallback_can_be_disabled():
    assert not get("arc", choice_text_fallback=False).grade(RECORD, "dry palms").correct


def test_ambiguous_choice_texts_need_the_exact_case():
    record = {
        "id": "x",
        "question": {"stem": "s", "choices": [{"text": "Ww only", "label": "A"}, {"text": "WW only", "label": "B"}]},
        "answerKey": "B",
    }
    assert get("arc").grade(record, "WW only").correct
    assert get("arc").grade(record, "ww only").extracted is None


def test_prompts_and_reference_completion():
    task = get("arc")
    plain = task.prompt(RECORD)
    assert plain.startswith("Question: George wants") and plain.endswith("(D) palms covered with lotion\nAnswer:")
    (message,) = task.prompt(RECORD, chat=True)
    assert "The answer is (X)" in message["content"]
    assert task.reference_completion(RECORD) == "The answer is (A) dry palms."


@pytest.mark.parametrize("name", ["ARC-Challenge-Train.jsonl", "ARC-Challenge-Dev.jsonl"])
def test_real_arc_references_grade_correct_and_other_letters_wrong(name):
    task = get("arc")
    records = _records(name)
    assert all(task.grade(r, task.reference_completion(r)).correct for r in records)
    for record in records:
        gold = task.gold_answer(record)
        for label, text in ((normalize_label(c["label"]), c["text"]) for c in record["question"]["choices"]):
            if label != gold:
                assert not task.grade(record, f"The answer is ({label}).").correct
                assert not task.grade(record, text).correct
