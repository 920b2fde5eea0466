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


# --- numeric labels (1-4): shown as A-D, and an answer by number grades like its letter ----

NUMERIC4 = {
    "id": "NYSEDREGENTS_like",
    "question": {
        "stem": "Which is a chemical property?",
        "choices": [
            {"text": "breaks easily", "label": "1"},
            {"text": "bubbles in acid", "label": "2"},
            {"text": "is soft", "label": "3"},
            {"text": "reflects light", "label": "4"},
        ],
    },
    "answerKey": "2",
}


def _numeric_completions(label: str) -> list[str]:
    return [
        f"The answer is ({label}).",
        f"The answer is {label}.",
        f"Final answer: {label}",
        f"Final answer: ({label})",
        f"Answer: {label}",
        f"So \\boxed{{{label}}}",
        f"Reasoning first.\n({label})",
        f"Reasoning first.\n{label}",
        f"The answer is **{label}**",
    ]


@pytest.mark.parametrize("completion", _numeric_completions("2"))
def test_numeric_label_answers_grade_like_letters(completion):
    grade = get("arc").grade(NUMERIC4, completion)
    assert (grade.correct, grade.extracted) == (True, "B"), grade


@pytest.mark.parametrize("label", ["1", "3", "4"])
def test_other_numeric_labels_are_wrong(label):
    for completion in _numeric_completions(label):
        grade = get("arc").grade(NUMERIC4, completion)
        assert not grade.correct and grade.extracted == "ABCD"[int(label) - 1], (completion, grade)


@pytest.mark.parametrize(
    "completion, extracted",
    [
        ("The answer is 5.", "E"),  # a number past the choices: extracted, not a choice
        ("The answer is 2.5", None),  # a decimal is not a label
        ("It has 2 layers, so I think the rock is soft", None),  # a count in prose is not a label
        ("The answer is (B).", "B"),  # letters, as the prompt shows them, still work
        ("bubbles in acid", "B"),  # so does the choice text
    ],
)
def test_numeric_label_edge_cases(completion, extracted):
    assert get("arc").grade(NUMERIC4, completion).extracted == extracted


def test_digits_are_not_labels_for_lettered_items():
    # RECORD is labelled A-D: "2" is not choice B (it could be a number in a choice's text).
    for completion in _numeric_completions("1"):
        assert get("arc").grade(RECORD, completion).extracted is None, completion


def test_numeric_items_prompt_with_letters():
    task = get("arc")
    assert "(A) breaks easily\n(B) bubbles in acid\n(C) is soft\n(D) reflects light" in task.prompt(NUMERIC4)
    (message,) = task.prompt(NUMERIC4, chat=True)
    assert "(B) bubbles in acid" in message["content"] and "(2)" not in message["content"]


@pytest.mark.parametrize("name, expected", [("ARC-Challenge-Train.jsonl", 23), ("ARC-Challenge-Dev.jsonl", 4)])
def test_real_numeric_label_items_grade_by_number(name, expected):
    """The shared ARC files hold items labelled 1-4 (23 in train, 4 in dev). Answering with the
    item's own label ("The answer is (2)", its answerKey) must be correct, any other number
    wrong, and the prompt must list the choices as (A)-(D)."""
    task = get("arc")
    records = [r for r in _records(name) if all(c["label"].isdigit() for c in r["question"]["choices"])]
    assert len(records) == expected
    graded_correct = 0
    for record in records:
        key = record["answerKey"]
        labels = [c["label"] for c in record["question"]["choices"]]
        prompt = task.prompt(record)
        assert all(f"({letter}) " in prompt for letter in "ABCD"[: len(labels)])
        if all(task.grade(record, c).correct for c in _numeric_completions(key)):
            graded_correct += 1
        for other in labels:
            if other != key:
                assert not any(task.grade(record, c).correct for c in _numeric_completions(other))
    assert graded_correct == expected, f"{graded_correct} of {expected} numeric-label items graded correct"
