"""MATH grader: boxed extraction, normalization, equivalence, and the real MATH files."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from jaxreason.tasks import get, grade_batch
from jaxreason.tasks.math_normalize import cheap_equal, normalize_answer, split_top_level
from jaxreason.tasks.text import last_boxed

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _math_records(split: str) -> list[dict]:
    path = DATA / "math" / f"{split}.jsonl"
    if not path.exists():
        pytest.skip(f"{path} not present")
    return [json.loads(line) for line in path.open()]


def _record(gold: str) -> dict:
    return {"problem": "p", "solution": f"So the answer is $\\boxed{{{gold}}}$."}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("so $\\boxed{5}$.", "5"),
        ("\\boxed{\\frac{1}{2}} then \\boxed{\\frac{3}{4}}", "\\frac{3}{4}"),
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
        ("\\boxed{a_{b_{c}}}", "a_{b_{c}}"),
        ("\\boxed 5$", "5"),
        ("\\boxed {7}", "7"),
        ("\\fbox{12}", "12"),
        ("\\boxed{3} and \\fbox{4}", "4"),
        ("no box here", None),
        ("\\boxed{\\frac{1}{2}", None),  # truncated: the final box never closes
        ("\\boxed", None),
    ],
)
def test_last_boxed_takes_the_last_balanced_box(text, expected):
    assert last_boxed(text) == expected


EQUIVALENT = [
    ("\\frac{1}{2}", "0.5"),
    ("\\frac{1}{2}", "1/2"),
    ("0.5", "1/2"),
    ("\\dfrac{3}{4}", "\\frac34"),
    ("5", "x=5"),
    ("10\\%", "10"),
    ("\\sqrt{8}", "2\\sqrt{2}"),
    ("\\{1,2\\}", "\\{2,1\\}"),
    ("-2, 3", "3, -2"),
    ("(-\\infty, 3]", "(-\\infty,3]"),
    ("\\text{(C)}", "C"),
    ("90^\\circ", "90"),
    ("90^{\\circ}", "90 degrees"),
    ("12\\text{ inches}", "12"),
    ("12 \\mbox{ cm}^2", "12"),
    ("1,000", "1000"),
    ("10{,}000", "10000"),
    ("\\$18.50", "18.5"),
    ("2", "2.0"),
    ("\\text{Sunday}", "sunday"),
    ("x^2+2x+1", "(x+1)^2"),
    ("8+4i", "4i+8"),
    ("3\\sqrt{2}", "\\sqrt{18}"),
    ("y=2x+3", "2x+3"),
    ("\\left( 1, \\frac{1}{2} \\right)", "(1,0.5)"),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
]

NOT_EQUIVALENT = [
    ("(1,2)", "(2,1)"),
    ("[1,2)", "[1,2]"),
    ("\\text{(C)}", "D"),
    ("-2,3", "-2,4"),
    ("\\text{odd}", "\\text{even}"),
    ("\\pi", "3.14"),
    ("0.333", "\\frac{1}{3}"),
    ("3", "\\frac{3}{5}"),
    ("2\\sqrt{2}", "3\\sqrt{2}"),
    ("5", ""),
]


@pytest.mark.parametrize("gold, pred", EQUIVALENT)
def test_equivalent_answers_are_graded_correct(gold, pred):
    grade = get("math").grade(_record(gold), f"Thus \\boxed{{{pred}}}.")
    assert grade.correct, grade
    assert grade.reward == 1.0


@pytest.mark.parametrize("gold, pred", NOT_EQUIVALENT)
def test_different_answers_are_graded_wrong(gold, pred):
    grade = get("math").grade(_record(gold), f"Thus \\boxed{{{pred}}}.")
    assert not grade.correct, grade
    assert grade.reward == 0.0


def test_cheap_checks_decide_numbers_without_symbolic_algebra():
    assert cheap_equal("\\frac{1}{4}", "0.25") == (True, "numeric_match")
    assert cheap_equal("7", "8") == (False, "wrong_answer")
    assert cheap_equal("(1,2)", "(1,3)") == (False, "wrong_answer")
    assert cheap_equal("\\sqrt{8}", "2\\sqrt{2}")[0] is None  # left to math-verify


def test_normalization_strips_presentation_only():
    assert normalize_answer("\\left( \\dfrac{1}{2}, 3 \\right)") == "(\\frac{1}{2},3)"
    assert normalize_answer("\\$1,234.") == "1234"
    assert normalize_answer("\\frac12") == "\\frac{1}{2}"
    assert normalize_answer("\\sqrt2") == "\\sqrt{2}"
    assert normalize_answer(".5") == "0.5"
    assert split_top_level("(1,\\frac{1}{2}]") == ("(", ["1", "\\frac{1}{2}"], "]")


def test_symbolic_fallback_can_be_disabled():
    task = get("math", symbolic=False)
    grade = task.grade(_record("\\sqrt{8}"), "\\boxed{2\\sqrt{2}}")
    assert not grade.correct and grade.reason == "wrong_answer"


def test_missing_box_is_no_answer_unless_lenient():
    strict = get("math").grade(_record("7"), "The final answer is 7.")
    assert (strict.correct, strict.reason, strict.format_ok) == (False, "no_answer", False)
    lenient = get("math", lenient_extraction=True).grade(_record("7"), "The final answer is $7$.")
    assert lenient.correct


def test_gold_answer_prefers_the_answer_field_then_the_solution_box():
    task = get("math")
    assert task.gold_answer({"problem": "p", "answer": "42", "solution": "\\boxed{41}"}) == "42"
    assert task.gold_answer({"problem": "p", "answer": "\\boxed{42}"}) == "42"
    assert task.gold_answer({"problem": "p", "solution": "so \\boxed{41}"}) == "41"
    assert task.grade({"problem": "p", "solution": "\\boxed{}"}, "\\boxed{0}").reason == "no_gold_answer"
    assert task.grade({"problem": "p", "answer": 17}, "\\boxed{17}").correct  # AIME-style int


def test_astro_reward_is_plus_minus_one():
    task = get("math", reward="astro")
    assert task.grade(_record("3"), "\\boxed{3}").reward == 1.0
    assert task.grade(_record("3"), "\\boxed{4}").reward == -1.0
    assert task.grade(_record("3"), "no answer").reward == -1.0


def test_format_reward_goes_to_boxed_wrong_answers_only():
    task = get("math", reward_format=0.1)
    assert task.grade(_record("3"), "\\boxed{4}").reward == 0.1
    assert task.grade(_record("3"), "four").reward == 0.0


def test_prompts_and_reference_completion():
    task = get("math")
    record = {"problem": "What is $1+1$?", "solution": "$1+1=\\boxed{2}$."}
    plain = task.prompt(record)
    assert "What is $1+1$?" in plain and "\\boxed{}" in plain
    chat = get("math", system_prompt="Be careful.").prompt(record, chat=True)
    assert chat[0] == {"role": "system", "content": "Be careful."}
    assert chat[1]["role"] == "user" and "What is $1+1$?" in chat[1]["content"]
    assert task.grade(record, task.reference_completion(record)).correct


def _shuffled_pairs(records: list[dict], seed: int) -> list[str]:
    """For each record, another record's solution whose answer is not trivially the same."""
    task = get("math")
    golds = [task.gold_answer(r) or "" for r in records]
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    completions = [""] * len(records)
    for position, index in enumerate(order):
        step = 1
        while True:
            other = order[(position + step) % len(order)]
            if other != index and golds[other] and cheap_equal(golds[index], golds[other])[0] is not True:
                break
            step += 1
        completions[index] = records[other]["solution"]
    return completions


def _shuffled_wrong_rate(records: list[dict]) -> float:
    task = get("math")
    grades = grade_batch(task, records, _shuffled_pairs(records, seed=0), item_timeout_s=20)
    return sum(not g.correct for g in grades) / len(records)


def test_shuffled_answers_grade_wrong_on_math_dev_and_a_train_sample():
    dev = _math_records("dev")
    sample = random.Random(1).sample(_math_records("train"), 300)
    assert _shuffled_wrong_rate(dev) >= 0.995
    assert _shuffled_wrong_rate(sample) >= 0.995


@pytest.mark.slow
def test_shuffled_answers_grade_wrong_on_all_of_math_train():
    assert _shuffled_wrong_rate(_math_records("train")) >= 0.995
