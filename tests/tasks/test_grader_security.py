"""Graders on hostile text: nothing runs, nothing hangs past the limit, memory stays bounded.

Every task's `grade` (in this process) and `grade_batch` (in workers) get strings that would
run code under `eval` / `sympify` / `parse_expr`, write a marker file if executed, or blow up
time and memory (huge powers, deep nesting, megabyte strings). Hypothesis then fuzzes every
grader with random and structured text.
"""

from __future__ import annotations

import math
import os
import re
import resource
import time
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxreason.tasks import Grade, GradingPool, get, grade_batch

SYMBOLIC_TIMEOUT_S = 3.0
# A single grade may also wait for a replacement worker to start after a kill.
SLACK_S = 6.0

RECORDS = {
    "math": {"problem": "p", "solution": "so $\\boxed{5}$"},
    "gsm8k": {"question": "q", "answer": "#### 5"},
    "countdown": {"target": 24, "nums": [1, 2, 3, 4]},
    "arc": {
        "id": "x",
        "question": {"stem": "s", "choices": [{"text": "yes", "label": "A"}, {"text": "no", "label": "B"}]},
        "answerKey": "A",
    },
}


def _tasks():
    return {
        "math": get("math", symbolic_timeout_s=SYMBOLIC_TIMEOUT_S),
        "gsm8k": get("gsm8k"),
        "countdown": get("countdown"),
        "arc": get("arc"),
    }


def _hostile(marker: str) -> list[str]:
    code = [
        f"__import__('os').system('touch {marker}')",
        f'__import__("os").system("touch {marker}")',
        f"open('{marker}', 'w').write('pwned')",
        f"(lambda: __import__('os').system('touch {marker}'))()",
        "().__class__.__bases__[0].__subclasses__()",
        f"[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'Popen'][0](['touch', '{marker}'])",
        f"exec(\"open('{marker}', 'w')\")",
        f"eval(\"__import__('os').system('touch {marker}')\")",
        f"Symbol('x').__class__.__init__.__globals__['os'].system('touch {marker}')",
    ]
    blowups = [
        "9**9**9**9",
        "9^{9^{9^{9}}}",
        "10^{10^{10^{10}}}",
        "2^{2^{2^{2^{2^{2^{2}}}}}}",
        "1e999999999",
        "100000!",
        "\\prod_{k=1}^{10^{9}} k",
        "\\int_0^{\\infty} e^{-x^2} dx",
        "\\frac{1}{0}",
        "(" * 100_000 + "1" + ")" * 100_000,
        "{" * 100_000 + "}" * 100_000,
        "(" * 400 + "1" + ")" * 400,
        "\\sqrt{" * 150 + "2" + "}" * 150,
        "\\frac{" * 2_000 + "1" + "}{2}" * 2_000,
        "x" * 1_000_000,
        "1" * 1_000_000,
        "<answer>" * 100_000,
        "\\boxed{" * 100_000,
        "answer is " * 25_000,
        " " * 200_000 + "answer is" + " " * 50_000 + "!",
        "1," * 100_000,
        "\ud800\x00\x01 \u202e",
    ]
    return code + blowups


WRAPPERS = [
    lambda text: text,
    lambda text: "\\boxed{" + text + "}",
    lambda text: "<think>x</think>\n<answer>" + text + "</answer>",
    lambda text: "The answer is " + text,
    lambda text: "#### " + text,
]


def _check_grade(grade: Grade) -> None:
    assert isinstance(grade, Grade)
    assert isinstance(grade.reward, float) and isinstance(grade.correct, bool)
    assert isinstance(grade.reason, str) and grade.reason
    assert grade.extracted is None or len(grade.extracted) <= 512


@pytest.mark.parametrize("name", ["math", "gsm8k", "countdown", "arc"])
def test_hostile_strings_run_nothing_and_return_in_time_in_process(name, tmp_path):
    marker = str(tmp_path / "pwned")
    task = _tasks()[name]
    rss_before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for text in _hostile(marker):
        for wrap in WRAPPERS:
            completion = wrap(text)
            start = time.monotonic()
            grade = task.grade(RECORDS[name], completion)
            elapsed = time.monotonic() - start
            _check_grade(grade)
            assert not grade.correct
            assert elapsed < SYMBOLIC_TIMEOUT_S + SLACK_S, (completion[:80], elapsed)
    assert not os.path.exists(marker)
    # The main process never holds more than a few copies of a 1 MB string.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss_before_mb < 300


def test_hostile_strings_in_grade_batch_run_nothing_and_respect_deadlines(tmp_path):
    marker = str(tmp_path / "pwned")
    completions = [wrap(text) for text in _hostile(marker) for wrap in WRAPPERS]
    with GradingPool(2) as pool:
        for name, task in _tasks().items():
            start = time.monotonic()
            grades = grade_batch(
                task, [RECORDS[name]] * len(completions), completions,
                item_timeout_s=3.0, total_timeout_s=90.0, pool=pool,
            )
            assert time.monotonic() - start < 90.0 + SLACK_S
            assert len(grades) == len(completions)
            for grade in grades:
                _check_grade(grade)
                assert not grade.correct
        for worker in pool._workers:  # peak memory of the workers still alive
            with open(f"/proc/{worker.process.pid}/status") as status:
                peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
            assert peak_kb / 1024 < 2048
    assert not os.path.exists(marker)


@pytest.mark.parametrize("name", ["math", "gsm8k", "countdown", "arc"])
def test_malformed_inputs_give_a_grade_not_an_exception(name):
    task = _tasks()[name]
    for completion in (None, b"bytes", 42):
        grade = task.grade(RECORDS[name], completion)
        assert grade.reason.startswith("bad_completion_type")
    grade = task.grade({}, "The answer is 5 \\boxed{5} <answer>5</answer>")
    _check_grade(grade)
    assert not grade.correct


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LATEX_PIECES = st.sampled_from(
    ["\\frac", "\\sqrt", "\\pi", "^", "_", "{", "}", "(", ")", "[", "]", ",", "+", "-", "*", "/",
     "=", "x", "y", "i", "e", "\\infty", "\\cdot", "\\text{", "\\%", "$", ".", " ", "\\\\",
     "\\left(", "\\right)", "\\{", "\\}", "0", "1", "2", "9", "\\le", "\\cup", "!", "\\dfrac12"]
)


@FUZZ
@given(text=st.text(max_size=2000))
def test_fuzz_every_grader_with_arbitrary_text(text):
    for name, task in _tasks().items():
        _check_grade(task.grade(RECORDS[name], text))


def latex_value(text: str) -> Fraction | None:
    """An independent value for the arithmetic a random box can spell: integers, + - * / ^,
    `\\cdot`, `\\frac{a}{b}` / `\\dfrac12`, `\\sqrt{}` of perfect squares, (), [], {}, `\\left(`,
    a leading `x =`, `$`, spaces and a trailing `.`. None for anything else (or out of range)."""
    s = text.replace("$", "").replace(" ", "").replace("\\left(", "(").replace("\\right)", ")")
    s = s.replace("\\cdot", "*").replace("\\dfrac", "\\frac").rstrip(".")
    s = re.sub(r"^[xy]=", "", s)
    tokens = re.findall(r"\\frac|\\sqrt|\d+|[-+*/^(){}\[\]]|\\[a-zA-Z]+|\\.|.", s)
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        position += 1
        return tokens[position - 1]

    def group() -> Fraction:  # {expr} or a single digit (\frac12)
        if peek() == "{":
            take()
            value = expr()
            if take() != "}":
                raise ValueError
            return value
        token = peek()
        if token is None or not token.isdigit():
            raise ValueError
        if len(token) == 1:
            take()
        else:  # \frac12: each argument is one digit
            tokens[position] = token[1:]
        return Fraction(int(token[0]))

    def atom() -> Fraction:
        token = peek()
        if token is None:
            raise ValueError
        if token.isdigit():
            return Fraction(int(take()))
        if token in ("(", "[", "{"):
            take()
            value = expr()
            if take() != {"(": ")", "[": "]", "{": "}"}[token]:
                raise ValueError
            return value
        if token == "\\frac":
            take()
            numerator, denominator = group(), group()
            return numerator / denominator
        if token == "\\sqrt":
            take()
            radicand = group()
            root = Fraction(math.isqrt(radicand.numerator), math.isqrt(radicand.denominator))
            if radicand < 0 or root * root != radicand:
                raise ValueError
            return root
        raise ValueError

    def power() -> Fraction:
        base = atom()
        if peek() == "^":
            take()
            exponent = group() if peek() == "{" else atom()
            if exponent.denominator != 1 or abs(exponent) > 64 or (base == 0 and exponent < 0):
                raise ValueError
            return base ** int(exponent)
        return base

    def unary() -> Fraction:
        if peek() in ("+", "-"):
            return -unary() if take() == "-" else unary()
        return power()

    def term() -> Fraction:
        value = unary()
        while peek() in ("*", "/"):
            value = value * unary() if take() == "*" else value / unary()
        return value

    def expr() -> Fraction:
        value = term()
        while peek() in ("+", "-"):
            value = value + term() if take() == "+" else value - term()
        return value

    try:
        value = expr()
    except (ValueError, ZeroDivisionError, IndexError):
        return None
    return value if position == len(tokens) else None


@FUZZ
@given(inner=st.lists(LATEX_PIECES, max_size=25).map("".join))
def test_fuzz_math_grader_with_random_boxed_latex(inner):
    task = _tasks()["math"]
    grade = task.grade(RECORDS["math"], "Therefore $\\boxed{" + inner + "}$.")
    _check_grade(grade)
    if grade.correct:  # only answers that really are 5 may pass
        assert latex_value(inner) == 5, (inner, grade)


@st.composite
def arithmetic(draw, depth: int = 0) -> tuple[str, Fraction]:
    """(LaTeX, exact value) of a small random expression, in the notations models write."""
    if depth >= 2 or draw(st.booleans()):
        n = draw(st.integers(0, 12))
        return str(n), Fraction(n)
    left_text, left = draw(arithmetic(depth + 1))
    right_text, right = draw(arithmetic(depth + 1))
    op = draw(st.sampled_from(["+", "-", "\\cdot", "\\times", "frac", "dfrac"]))
    if op in ("frac", "dfrac"):
        if right == 0:
            return f"({left_text}+{right_text})", left + right
        return f"\\{op}{{{left_text}}}{{{right_text}}}", left / right
    value = {"+": left + right, "-": left - right}.get(op, left * right)
    return f"\\left({left_text} {op} {right_text}\\right)", value


def _fraction_latex(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    sign = "-" if value < 0 else ""
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


@FUZZ
@given(expression=arithmetic(), offset=st.sampled_from([None, 0, 0, 1, -1, Fraction(1, 2)]),
       prefix=st.sampled_from(["", "x = "]))
def test_fuzz_math_grader_is_correct_exactly_when_the_value_is_the_gold(expression, offset, prefix):
    """Random arithmetic with a known value: correct if and only if it equals the gold 5. Most
    cases are completed to 5 + offset (`... + (5 + offset - value)`): exactly 5, or a near miss."""
    text, value = expression
    if offset is not None:
        text = f"{text} + \\left({_fraction_latex(5 + offset - value)}\\right)"
        value = Fraction(5 + offset)
    grade = _tasks()["math"].grade(RECORDS["math"], f"So $\\boxed{{{prefix}{text}}}$.")
    _check_grade(grade)
    assert grade.correct == (value == 5), (text, value, grade)


def _expressions(numbers: list[int]):
    """(text, value or None for division by zero) trees over all `numbers`, each used once."""
    if len(numbers) == 1:
        return st.just((str(numbers[0]), Fraction(numbers[0])))

    @st.composite
    def tree(draw):
        split = draw(st.integers(1, len(numbers) - 1))
        left_text, left_value = draw(_expressions(numbers[:split]))
        right_text, right_value = draw(_expressions(numbers[split:]))
        op = draw(st.sampled_from("+-*/"))
        if left_value is None or right_value is None or (op == "/" and right_value == 0):
            value = None
        else:
            value = {"+": left_value + right_value, "-": left_value - right_value,
                     "*": left_value * right_value}.get(op) if op != "/" else left_value / right_value
        return f"({left_text} {op} {right_text})", value

    return tree()


@FUZZ
@given(data=st.data(), numbers=st.lists(st.integers(1, 30), min_size=2, max_size=5))
def test_fuzz_countdown_checker_agrees_with_an_independent_evaluation(data, numbers):
    text, value = data.draw(_expressions(numbers))
    target = int(value) if value is not None and value.denominator == 1 else 10**6
    record = {"target": target, "nums": numbers}
    grade = get("countdown", max_depth=16).grade(record, f"<answer>{text}</answer>")
    _check_grade(grade)
    if value is None:
        assert grade.reason == "invalid_expression: division by zero"
    elif text.count("(") <= 16:
        assert grade.correct == (value == target)


@FUZZ
@given(value=st.integers(-10**9, 10**9), other=st.integers(-10**9, 10**9), style=st.integers(0, 3))
def test_fuzz_gsm8k_numbers_in_every_style(value, other, style):
    task = _tasks()["gsm8k"]
    record = {"question": "q", "answer": f"work\n#### {value}"}
    formats = [f"#### {other}", f"The answer is ${other:,}.", f"Final answer: {other}.00", f"\\boxed{{{other}}}"]
    grade = task.grade(record, "Let me think: 3 + 4 = 7.\n" + formats[style])
    assert grade.correct == (value == other)


@FUZZ
@given(noise=st.text(max_size=200), label=st.sampled_from("AB"))
def test_fuzz_arc_explicit_answers_win_over_noise(noise, label):
    task = _tasks()["arc"]
    grade = task.grade(RECORDS["arc"], noise + f"\nThe answer is ({label}).")
    assert grade.correct == (label == "A")
