"""Multi-answer problems (OlympiadBench, MATH lists), the answer-form rules, benchmark conventions.

OlympiadBench's multiple-answer records (`is_multiple_answer`) keep their gold in
`final_answer` (a list, or one string listing the answers); reasoning models write each answer
in its own box. The records below follow OlympiadBench's record format and answer styles
(tuples, several solutions, lists of numbers, equations, intervals, units). For each, the gold
written as separate boxes must grade correct, and with any one part changed, wrong.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxreason.tasks import get
from jaxreason.tasks.math_answers import extract_parts, final_statement
from jaxreason.tasks.math_normalize import cheap_equal
from jaxreason.tasks.text import boxes


def _olympiad(final_answer, *, unit=None, answer_type="Numerical", error=None) -> dict:
    return {"id": 1, "question": "q", "final_answer": final_answer, "is_multiple_answer": True,
            "unit": unit, "answer_type": answer_type, "error": error}


# (record, the answers as a model boxes them, the same answers with one part changed)
OLYMPIAD_MULTI = [
    (_olympiad(["$(2,2),(6,2)$"], answer_type="Tuple"), ["(2, 2)", "(6, 2)"], ["(2, 2)", "(6, 3)"]),
    (_olympiad(["$(1,1)$", "$(2,3)$", "$(3,2)$"], answer_type="Tuple"),
     ["(3,2)", "(1,1)", "(2,3)"], ["(3,2)", "(1,1)", "(3,3)"]),
    (_olympiad(["$1, 3, 5$"]), ["1", "3", "5"], ["1", "3", "7"]),
    (_olympiad(["$x=1$", "$x=-2$"], answer_type="Equation"), ["x = -2", "x = 1"], ["x = -2", "x = 2"]),
    (_olympiad(["$\\frac{1}{2}$", "$-\\frac{3}{4}$"]), ["-\\frac{3}{4}", "0.5"], ["-\\frac{3}{4}", "\\frac{1}{3}"]),
    (_olympiad(["$n=2$", "$n=3$"], answer_type="Expression"), ["n=3", "n=2"], ["n=3", "n=4"]),
    (_olympiad(["$(-\\infty, -1]$", "$[2, \\infty)$"], answer_type="Interval"),
     ["[2, \\infty)", "(-\\infty, -1]"], ["[2, \\infty)", "(-\\infty, -1)"]),
    (_olympiad(["$3 \\mathrm{~m/s}$", "$5 \\mathrm{~m/s}$"], unit="\\mathrm{~m/s}"),
     ["5 \\mathrm{~m/s}", "3"], ["5 \\mathrm{~m/s}", "4"]),
    (_olympiad(["$\\sqrt{2}$", "$-\\sqrt{2}$"]), ["\\sqrt{2}", "-\\sqrt{2}"], ["\\sqrt{2}", "-\\sqrt{3}"]),
    (_olympiad(["$(0,1,2)$", "$(2,1,0)$"], answer_type="Tuple"),
     ["(2,1,0)", "(0,1,2)"], ["(2,1,0)", "(0,2,1)"]),  # a tuple of tuples stays ordered inside
]


def _boxed(answers: list[str], joiner: str = "$ and $") -> str:
    return "Checking all cases, the answers are $" + joiner.join(f"\\boxed{{{a}}}" for a in answers) + "$."


@pytest.mark.parametrize("record, answers, changed", OLYMPIAD_MULTI)
def test_olympiadbench_multi_answers_in_separate_boxes(record, answers, changed):
    task = get("math", benchmark="olympiadbench")
    for joiner in ("$ and $", "$, $", " \\quad \\text{and} \\quad ", "$ or $"):
        grade = task.grade(record, _boxed(answers, joiner))
        assert grade.correct, (joiner, grade)
        wrong = task.grade(record, _boxed(changed, joiner))
        assert not wrong.correct, (joiner, wrong)
    # Fewer answers than the gold, or one answer repeated: wrong.
    assert not task.grade(record, _boxed(answers[:-1])).correct
    assert not task.grade(record, _boxed(answers + ["17"])).correct


def test_math_list_answer_given_as_separate_boxes():
    record = {"problem": "Enter all solutions, separated by commas.", "answer": "-2, 1"}
    task = get("math")
    assert task.grade(record, "so $x = \\boxed{1}$ or $x = \\boxed{-2}$.").correct
    assert task.grade(record, "The solutions are $\\boxed{-2, 1}$.").correct
    assert not task.grade(record, "so $x = \\boxed{1}$ or $x = \\boxed{2}$.").correct
    assert not task.grade(record, "so $x = \\boxed{1}$.").correct


def test_intermediate_boxes_are_not_part_of_the_answer():
    text = "First $\\boxed{200}$ dollars. After six more months she has even more, so $\\boxed{255}$."
    assert extract_parts(text) == ["255"]
    assert extract_parts("$\\boxed{1}$ and $\\boxed{2}$") == ["1", "2"]
    assert extract_parts("$\\boxed{1}$ and $\\boxed{2}$", "last") == ["2"]
    assert extract_parts("A $\\boxed{1}$. Then we see\n\nthat $\\boxed{2}$, also $\\boxed{3}$", "paragraph") == ["2", "3"]
    # After a reasoning trace, the summary's boxes count.
    assert extract_parts("<think>maybe \\boxed{4}</think> So \\boxed{5}.") == ["5"]
    assert extract_parts("<think>so \\boxed{4}</think> So it is 4.") == ["4"]
    assert extract_parts("\\boxed{1} and \\boxed{2") is None  # a truncated last box


def test_a_final_answer_statement_after_the_last_box_wins():
    assert extract_parts("so $\\boxed{255}$. Final Answer: The final answer is $10,455$. I hope") == ["10,455"]
    assert extract_parts("so $\\boxed{7}$. I hope this final answer is right.") == ["7"]
    assert final_statement("Final Answer: The final answer is 16386.16.") == "16386.16"


def test_a_solution_gold_with_several_boxes_accepts_the_group_and_its_last_box():
    record = {"problem": "p", "solution": "Therefore, the answers are $\\boxed{-2}$ and $\\boxed{1}$."}
    task = get("math")
    assert task.grade(record, "$\\boxed{1}$ and $\\boxed{-2}$").correct
    assert task.grade(record, "$\\boxed{1}$").correct  # MATH's convention: the last box
    assert not task.grade(record, "$\\boxed{-2}$ and $\\boxed{3}$").correct


# ----------------------------------------------------------------------------- answer forms

FORMS_EQUAL = [
    ("(-\\infty, 1) \\cup (2, 3]", "(2,3] \\cup (-\\infty,1)"),  # union, any order
    ("(1, 2)", "\\left( 1, 2 \\right)"),  # points
    ("x = 3", "3"), ("3", "x=3"),  # equations
    ("k = 45, n = 2", "n=2, k=45"), ("k = 45, n = 2", "45, 2"),
    ("25\\%", "25"), ("28 \\%", "28 percent"),  # percentages
    ("12 \\text{ cm}", "12"), ("\\mathrm{12}", "12"), ("\\textbf{12}", "12"),  # units, wrappers
    ("1,234", "1234"), ("32,\\!349", "32349"), ("10{,}000", "10000"), ("x = 70,110", "70110"),
    ("30^\\circ", "30"), ("30^{\\circ}", "30 degrees"),  # degrees
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}"),
    ("2\\frac{1}{2}", "5/2"), ("4 4/9", "\\frac{40}{9}"), ("-1 1/2", "-1.5"),  # mixed numbers
    ("3 \\times 10^{8}", "300000000"), ("3e8", "3.0 \\times 10^{8}"), ("10^{-3}", "0.001"),
    ("\\\\frac{1}{2}", "0.5"),  # a doubly escaped source text
]
FORMS_DIFFERENT = [
    ("32349", "32, 349"),  # comma and space: a list of two numbers
    ("(1, 2)", "(2, 1)"), ("[1, 2)", "[1, 2]"),
    ("k = 45, n = 2", "n=45, k=2"),
    ("2\\frac{1}{2}", "2"), ("4 4/9", "4"),
    ("3 \\times 10^{8}", "3 \\times 10^{9}"),
    ("1, 2", "1, 3"),
]


@pytest.mark.parametrize("gold, pred", FORMS_EQUAL)
def test_answer_forms_that_are_equal(gold, pred):
    assert get("math").grade({"problem": "p", "answer": gold}, f"\\boxed{{{pred}}}").correct


@pytest.mark.parametrize("gold, pred", FORMS_DIFFERENT)
def test_answer_forms_that_differ(gold, pred):
    assert not get("math").grade({"problem": "p", "answer": gold}, f"\\boxed{{{pred}}}").correct


def test_plus_minus_expands_to_two_answers():
    task = get("math")
    record = {"problem": "p", "answer": "1 \\pm \\sqrt{19}"}
    assert task.grade(record, "$\\boxed{1 + \\sqrt{19}}$ and $\\boxed{1 - \\sqrt{19}}$").correct
    assert task.grade(record, "$\\boxed{1 \\pm \\sqrt{19}}$").correct
    assert not task.grade(record, "$\\boxed{1 + \\sqrt{19}}$").correct
    assert not task.grade({"problem": "p", "answer": "\\pm 2021"}, "\\boxed{2021}").correct


# ----------------------------------------------------------------------------- benchmarks

def test_aime_answers_are_integers_from_0_to_999():
    task = get("math", benchmark="aime")
    record = {"problem": "p", "answer": 33}
    assert task.grade(record, "\\boxed{033}").correct
    assert task.grade(record, "\\boxed{33}").correct
    assert not task.grade(record, "\\boxed{33.5}").correct
    assert task.grade(record, "\\boxed{x+1}").reason == "not_an_aime_integer"


def test_minerva_uses_lm_evals_final_answer_format_and_normalization():
    task = get("math", benchmark="minerva")
    record = {"problem": "p", "answer": "3.00 \\times 10^{8}"}
    completion = "The speed is fast. Final Answer: The final answer is $3.0001 \\times 10^{8}$. I hope it is correct."
    assert task.grade(record, completion).correct  # within the relative 1e-4
    assert not task.grade(record, completion.replace("3.0001", "3.1")).correct
    assert task.grade({"problem": "p", "answer": "5"}, "Final Answer: The final answer is $5$ meters. I hope it is correct.").correct


def test_olympiadbench_error_is_an_absolute_tolerance():
    task = get("math", benchmark="olympiadbench")
    record = _olympiad(["$9.8$"], error="0.1")
    record["is_multiple_answer"] = False
    assert task.grade(record, "\\boxed{9.75}").correct
    assert not task.grade(record, "\\boxed{9.6}").correct
    assert task.prompt(record) .startswith("Problem:\nq")


def test_unknown_options_are_refused():
    with pytest.raises(ValueError):
        get("math", benchmark="gsm8k")
    with pytest.raises(ValueError):
        get("math", multi_box="first")


# ----------------------------------------------------------------------------- safety of the new paths

def test_box_scanning_is_linear_on_hostile_text():
    for text in ("\\boxed{" * 100_000, "\\boxed{1}" * 30_000, "\\boxed{1} and " * 20_000,
                 "final answer " * 20_000 + "$", "$" * 200_000):
        start = time.perf_counter()
        extract_parts(text)
        boxes(text)
        assert time.perf_counter() - start < 2.0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(["\\boxed{", "}", "{", "\\fbox", " and ", "$", ",", "1", "-2", "(", ")",
                                 "\\pm", "\\cup", "x=", "</think>", "Final Answer: ", "\\\\", "\n\n",
                                 ".", "e8", "\\times10^{", "\\frac", "{,}", ",\\!"]), max_size=40))
def test_fuzzed_multi_box_text_never_raises(pieces):
    text = "".join(pieces)
    task = get("math", symbolic=False)
    for record in ({"problem": "p", "answer": "1, -2"}, {"problem": "p", "solution": text},
                   _olympiad(["$1$", "$(2,3)$"])):
        grade = task.grade(record, text)
        assert not grade.reason.startswith("grader_error"), grade
    cheap_equal(text, text[::-1])


@pytest.mark.parametrize("gold, prediction, correct", [
    # MATH test/prealgebra/1418: one number written with spaces around the negative thin space.
    ("111, \\! 111, \\! 111", "111,111,111", True),
    ("111, \\! 111, \\! 111", "111111111", True),
    ("111, \\! 111, \\! 111", "111", False),
    # MATH train/intermediate_algebra/1463: "81, 256" lists two solutions, in either order.
    ("81, 256", "256, 81", True),
    ("81, 256", "81256", False),
    ("81, 256", "81", False),
])
def test_a_comma_is_a_thousands_separator_only_with_a_thin_space_or_no_space(gold, prediction, correct):
    record = {"problem": "p", "solution": f"So $x = \\boxed{{{gold}}}$."}
    grade = get("math").grade(record, f"The answer is $\\boxed{{{prediction}}}$.")
    assert grade.correct is correct, grade
