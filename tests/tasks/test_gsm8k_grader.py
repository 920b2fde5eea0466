"""GSM8K grader: gold parsing, answer extraction formats, and the real GSM8K files."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from jaxreason.tasks import get

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _records(split: str) -> list[dict]:
    path = DATA / "gsm8k" / f"{split}.jsonl"
    if not path.exists():
        pytest.skip(f"{path} not present")
    return [json.loads(line) for line in path.open()]


def _record(gold: str) -> dict:
    return {"question": "q", "answer": f"Some work <<2*3=6>>6.\n#### {gold}"}


def test_gold_answer_is_the_number_after_hashes():
    task = get("gsm8k")
    assert task.gold_answer(_record("72")) == "72"
    assert task.gold_answer(_record("1,200")) == "1200"
    assert task.gold_answer(_record("-5")) == "-5"


@pytest.mark.parametrize(
    "completion",
    [
        "so 18 in all.\n#### 18",
        "Final answer: 18",
        "The final answer is $18.00.",
        "The answer is 18.",
        "The answer is: $18",
        "Thus $\\boxed{18}$.",
        "\\boxed{\\$18}",
        "She earns 9 * 2 = 18 dollars",  # lenient: the last number
        "#### 18.0",
        "Final answer: 18\n",
    ],
)
def test_equivalent_formats_of_the_answer_are_correct(completion):
    grade = get("gsm8k").grade(_record("18"), completion)
    assert grade.correct, grade


def test_thousands_separators_and_negative_numbers():
    task = get("gsm8k")
    assert task.grade(_record("1200"), "#### 1,200").correct
    assert task.grade(_record("1,200"), "The answer is $1200.").correct
    assert task.grade(_record("-3"), "The answer is -3.").correct
    assert task.grade(_record("-3"), "The answer is \u22123.").correct
    assert not task.grade(_record("-3"), "The answer is 3.").correct


@pytest.mark.parametrize(
    "completion",
    ["#### 19", "The answer is 18.5", "Final answer: 180", "no digits here", "\\boxed{x}"],
)
def test_wrong_or_missing_answers_are_wrong(completion):
    assert not get("gsm8k").grade(_record("18"), completion).correct


def test_the_last_explicit_marker_wins():
    task = get("gsm8k")
    assert task.extract("The answer is 5. Wait, recheck. #### 7") == "7"
    assert task.extract("#### 7\nFinal answer: 8") == "8"


def test_strict_mode_needs_a_marker_and_format_reward_follows_it():
    strict = get("gsm8k", lenient_extraction=False)
    assert strict.grade(_record("18"), "it is 18").reason == "no_answer"
    shaped = get("gsm8k", reward_format=0.1)
    assert shaped.grade(_record("18"), "#### 17").reward == 0.1
    assert shaped.grade(_record("18"), "it is 17").reward == 0.0  # the last number is not a format


def test_reference_completion_drops_calculator_annotations():
    task = get("gsm8k")
    record = _record("6")
    assert task.reference_completion(record) == "Some work 6.\n#### 6"
    assert "<<" in get("gsm8k", strip_calculator_annotations=False).reference_completion(record)
    assert task.grade(record, task.reference_completion(record)).correct


def test_prompts():
    task = get("gsm8k")
    record = _record("6")
    assert task.prompt(record) == "Question: q\nAnswer:"
    (message,) = task.prompt(record, chat=True)
    assert message["role"] == "user" and message["content"].startswith("q\n")


@pytest.mark.parametrize("split", ["train", "dev"])
def test_shuffled_answers_grade_wrong_on_real_gsm8k(split):
    task = get("gsm8k")
    records = _records(split)
    golds = [task.gold_answer(r) for r in records]
    order = list(range(len(records)))
    random.Random(0).shuffle(order)
    wrong = 0
    for position, index in enumerate(order):
        step = 1
        while golds[order[(position + step) % len(order)]] == golds[index]:
            step += 1
        other = records[order[(position + step) % len(order)]]
        wrong += not task.grade(records[index], other["answer"]).correct
    assert wrong / len(records) >= 0.995
    assert wrong == len(records)
