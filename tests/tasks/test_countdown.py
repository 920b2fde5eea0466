"""Countdown: safe expression checker, rewards, TinyZero data, solver and generator."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from jaxreason.tasks import generate_instances, get, solve
from jaxreason.tasks.countdown import ExpressionError, ExpressionRules, evaluate, last_answer_span

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
RECORD = {"target": 24, "nums": [1, 2, 3, 4]}


def _answer(expression: str) -> str:
    return f"<think>trying</think>\n<answer> {expression} </answer>"


def _parquet_records() -> list[dict]:
    path = DATA / "countdown" / "train.parquet"
    if not path.exists():
        pytest.skip(f"{path} not present")
    return get("countdown").load_records(str(path))


def test_correct_expression_gets_the_full_reward():
    grade = get("countdown").grade(RECORD, _answer("(1 + 2 + 3) * 4"))
    assert (grade.correct, grade.reward, grade.reason) == (True, 1.0, "reached_target")
    assert grade.extracted == "(1 + 2 + 3) * 4"


@pytest.mark.parametrize(
    "expression, reason_start",
    [
        ("(1 + 2 + 3) * 4 * 1", "wrong_numbers: not given or reused [1]"),  # reused 1
        ("(2 + 3 + 1) * 4 * 4 / 4", "wrong_numbers"),  # reused 4
        ("4 * 3 * 2", "wrong_numbers: unused [1]"),  # missing number
        ("1 + 2 + 3 + 4", "wrong_value"),
        ("24 / (4 - 4) + 1 + 2 + 3", "invalid_expression: division by zero"),
        ("4 * 3 * 2 * 1 / 0", "invalid_expression: division by zero"),
        ("2**10", "invalid_expression"),
        ("1e9", "invalid_expression: character 'e'"),
        ("__import__('os')", "invalid_expression: character '_'"),
        ("4 × 3 × 2 × 1", "invalid_expression: character"),
        ("12 34", "invalid_expression: unexpected '34'"),  # no concatenation
        ("-1 + 2 + 3 * 4", "invalid_expression: unary minus"),
        ("(" * 40 + "1" + ")" * 40, "invalid_expression: more than 64 tokens"),
        ("(" * 1000 + "1" + ")" * 1000, "invalid_expression: too long"),
        ("(" * 17 + "1" + ")" * 17 + " + 2 + 3 + 4", "invalid_expression: nested deeper"),
        ("1.5 + 2", "invalid_expression: character '.'"),
        ("", "invalid_expression: empty expression"),
        ("(1 + 2", "invalid_expression"),
    ],
    ids=lambda value: value[:24],
)
def test_checker_rejects_invalid_answers_with_the_format_reward(expression, reason_start):
    grade = get("countdown").grade(RECORD, _answer(expression))
    assert not grade.correct
    assert grade.reason.startswith(reason_start), grade.reason
    assert grade.reward == pytest.approx(0.1)  # TinyZero: well-formed tag, wrong content


def test_no_answer_tag_gets_zero():
    task = get("countdown")
    for completion in ("(1+2+3)*4", "<answer>(1+2+3)*4", "</answer>(1+2+3)*4<answer>"):
        grade = task.grade(RECORD, completion)
        assert (grade.reward, grade.reason) == (0.0, "no_answer")


def test_last_answer_tag_counts():
    assert last_answer_span("<answer>1</answer> then <answer>2</answer> tail") == "2"
    assert get("countdown").grade(RECORD, "<answer>1+2</answer>\n" + _answer("4*3*2*1")).correct


def test_integer_intermediates_option():
    record = {"target": 24, "nums": [1, 3, 4, 6]}
    expression = "6 / (1 - 3 / 4)"
    assert get("countdown").grade(record, _answer(expression)).correct
    strict = get("countdown", integer_intermediates=True).grade(record, _answer(expression))
    assert not strict.correct and strict.reason.startswith("invalid_expression: non-integral")


def test_subset_and_unary_minus_options():
    assert not get("countdown").grade(RECORD, _answer("4 * 3 * 2")).correct
    assert get("countdown", require_all_numbers=False).grade(RECORD, _answer("4 * 3 * 2")).correct
    record = {"target": 5, "nums": [1, 2, 4]}
    assert get("countdown", allow_unary_minus=True).grade(record, _answer("-1 + 2 + 4")).correct


def test_equation_with_right_hand_side():
    assert get("countdown").grade(RECORD, _answer("(1 + 2 + 3) * 4 = 24")).correct
    task = get("countdown", reject_wrong_rhs=True)
    assert task.grade(RECORD, _answer("(1 + 2 + 3) * 4 = 24")).correct
    assert not task.grade(RECORD, _answer("(1 + 2 + 3) * 4 = 25")).correct


def test_tinyzero_compat_reads_only_the_last_line():
    task = get("countdown", tinyzero_compat=True)
    assert task.grade(RECORD, "<answer>(1+2+3)*4</answer>\n  \n").correct  # trailing blanks stripped
    moved = task.grade(RECORD, "<answer>(1+2+3)*4</answer>\nDone.")
    assert (moved.correct, moved.reason, moved.reward) == (False, "no_answer", 0.0)
    assert task.grade({"target": 3, "nums": [1, 5, 1]}, "<answer>1.5 * 2</answer>").reason.startswith("wrong")
    assert not task.grade(RECORD, "<answer>2**10</answer>").correct


def test_reward_presets():
    astro = get("countdown", reward="astro")
    assert astro.grade(RECORD, _answer("(1+2+3)*4")).reward == 1.0
    assert astro.grade(RECORD, _answer("1+2+3+4")).reward == -1.0
    assert astro.grade(RECORD, "nothing").reward == -1.0
    binary = get("countdown", reward="binary")
    assert binary.grade(RECORD, _answer("1+2+3+4")).reward == 0.0


def test_evaluate_is_exact():
    value, literals = evaluate("(1 + 2) / 3 + 4 / 6")
    assert value == Fraction(5, 3) and literals == [1, 2, 3, 4, 6]
    with pytest.raises(ExpressionError):
        evaluate("1 / (2 - 2)")
    with pytest.raises(ExpressionError):
        evaluate("9" * 13)
    assert evaluate("- - 3", ExpressionRules(allow_unary_minus=True))[0] == 3


def test_solver_steps_and_expression_are_checked_correct():
    solution = solve([44, 19, 35], 98)
    assert solution.steps == ("44 + 19 = 63", "63 + 35 = 98")
    assert solution.expression == "(44 + 19) + 35"
    rational = solve([1, 3, 4, 6], 24)
    assert rational.steps[-1] == "6 / (1/4) = 24"
    assert get("countdown").grade({"target": 24, "nums": [1, 3, 4, 6]}, _answer(rational.expression)).correct
    assert solve([1, 3, 4, 6], 24, integer_only=True) is None
    assert solve([2, 3, 5], 100) is None


def test_reference_completion_continues_the_base_prompt_and_grades_correct():
    task = get("countdown")
    record = {"target": 98, "nums": [44, 19, 35]}
    completion = task.reference_completion(record)
    assert completion == "\n44 + 19 = 63\n63 + 35 = 98\n</think>\n<answer> (44 + 19) + 35 </answer>"
    assert task.reference_completion(record, chat=True).startswith("<think>\n44 + 19")
    assert get("countdown", tinyzero_compat=True).grade(record, completion).correct
    with pytest.raises(ValueError, match="no solution"):
        task.reference_completion({"target": 100, "nums": [2, 3, 5]})


def test_tinyzero_parquet_loads_and_prompts_match_it_byte_for_byte():
    records = _parquet_records()
    assert len(records) == 8001
    task = get("countdown")
    assert all(task.prompt(r) == r["prompt"][0]["content"] for r in records)
    chat = task.prompt(records[0], chat=True)
    assert chat[0]["role"] == "user" and "<answer> (1 + 2) / 3 </answer>" in chat[0]["content"]


def test_solver_solves_every_tinyzero_instance():
    """All 8,001 instances have a solution; the solver's answer passes the checker."""
    task = get("countdown")
    records = _parquet_records()
    unsolved = []
    for record in records:
        solution = solve(record["nums"], record["target"])
        if solution is None or not task.grade(record, _answer(solution.expression)).correct:
            unsolved.append(record)
    assert unsolved == []


def test_generated_instances_are_solvable_deterministic_and_in_range():
    instances = generate_instances(40, seed=7, num_numbers=(3, 6), number_range=(1, 24), target_range=(10, 25))
    assert instances == generate_instances(40, seed=7, num_numbers=(3, 6), number_range=(1, 24), target_range=(10, 25))
    assert instances != generate_instances(40, seed=8, num_numbers=(3, 6), number_range=(1, 24), target_range=(10, 25))
    assert {len(i["nums"]) for i in instances} == {3, 4, 5, 6}
    task = get("countdown")
    for instance in instances:
        assert 10 <= instance["target"] <= 25 and all(1 <= n <= 24 for n in instance["nums"])
        solution = solve(instance["nums"], instance["target"], integer_only=True)
        assert solution is not None
        assert task.grade(instance, _answer(solution.expression)).correct


def test_generator_excludes_given_number_sets():
    first = generate_instances(20, seed=0, num_numbers=(3, 3), number_range=(1, 4), target_range=(10, 12))
    excluded = [instance["nums"] for instance in first]
    again = generate_instances(
        20, seed=0, num_numbers=(3, 3), number_range=(1, 4), target_range=(10, 12), exclude=excluded[:3]
    )
    banned = {tuple(sorted(n)) for n in excluded[:3]}
    assert all(tuple(sorted(i["nums"])) not in banned for i in again)
