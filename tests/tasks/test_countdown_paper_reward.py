"""The `paper` Countdown mode equals the cognitive-behaviors authors' scorer (TinyZero's).

`authors_score` below re-states the authors' scorer step by step as they wrote it: the text
after "Assistant:" (our completions follow the prompt's "Assistant:", so that is the whole
completion), its last line, the last `<answer>(.*?)</answer>`, the `\\d+` numbers compared as a
sorted list, the character whitelist regex, then Python's `eval` and a 1e-5 tolerance, with
1 / 0.1 / 0. The only change: when the expression contains `**`, the value comes from a
tiny evaluator over `ast.parse` (Python's own parser; nothing is executed) with a size guard
on powers, so that a generated `99**(99*99*99)` cannot stall the test. `eval` only ever sees
strings that this test generated and that passed the authors' digits/operators regex.

Hypothesis generates a few thousand completions around the cases where the paper's scorer and
our strict checker differ: answers spread over lines, `= target` in the answer, unary minus,
decimals, leading zeros, `**` and `//`, odd whitespace, several answer tags, text after the
answer, Unicode digits.
"""

from __future__ import annotations

import ast
import operator
import re
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxreason.tasks import get
from jaxreason.tasks import countdown_paper

# ----------------------------------------------------------------------------- the re-statement

_POW_GUARD_BITS = countdown_paper.MAX_POWER_BITS
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv}


class _TooBig(Exception):
    pass


def _ast_value(node):
    if isinstance(node, ast.Expression):
        return _ast_value(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _ast_value(node.operand)
        return -value if isinstance(node.op, ast.USub) else +value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        base, exponent = _ast_value(node.left), _ast_value(node.right)
        if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
            if exponent * (abs(base).bit_length() - 1) > _POW_GUARD_BITS:
                raise _TooBig()
        return base ** exponent
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _BINOPS[type(node.op)](_ast_value(node.left), _ast_value(node.right))
    # a call of a number "(1)(2)", a tuple "()": eval gives a TypeError or a non-number
    raise TypeError(type(node).__name__)


def _authors_extract(solution_str: str):
    solution_str = solution_str.split("\n")[-1]
    matches = list(re.finditer(r"<answer>(.*?)</answer>", solution_str))
    return matches[-1].group(1).strip() if matches else None


def _authors_validate(equation_str: str, available_numbers) -> bool:
    try:
        numbers_in_eq = [int(n) for n in re.findall(r"\d+", equation_str)]
        return sorted(numbers_in_eq) == sorted(available_numbers)
    except Exception:
        return False


def _authors_evaluate(equation_str: str):
    try:
        if not re.match(r"^[\d+\-*/().\s]+$", equation_str):
            raise ValueError("Invalid characters in equation.")
        if "**" in equation_str:
            return _ast_value(ast.parse(equation_str, mode="eval"))
        with warnings.catch_warnings():  # "(1)(2)" warns "'int' object is not callable"
            warnings.simplefilter("ignore", SyntaxWarning)
            return eval(equation_str, {"__builtins__": None}, {})  # only test-generated strings
    except _TooBig:
        return float("inf")  # never within 1e-5 of a target
    except Exception:
        return None


def authors_score(completion: str, numbers, target) -> float:
    equation = _authors_extract(completion)
    if equation is None:
        return 0
    if not _authors_validate(equation, numbers):
        return 0.1
    try:
        result = _authors_evaluate(equation)
        if result is None:
            return 0.1
        return 1.0 if abs(result - target) < 1e-5 else 0.1
    except Exception:
        return 0.1


PAPER = get("countdown", mode="paper")


def ours(completion: str, numbers, target) -> float:
    return PAPER.grade({"nums": numbers, "target": target}, completion).reward


# ----------------------------------------------------------------------------- the probes

PROBES = [
    # (nums, target, completion, paper reward)
    ([3, 5, 7], 22, "<think>x</think>\n<answer>3 * 5 + 7</answer>", 1.0),
    ([3, 5, 7], 22, "<think>x</think>\n<answer>3 * 5\n+ 7</answer>", 0.0),  # over two lines
    ([3, 5, 7], 22, "<think>x</think>\n<answer>3 * 5 + 7 = 22</answer>", 0.1),  # "= 22" adds 22
    ([3, 5, 5], 22, "<think>x</think>\n<answer>-3 + 5 * 5</answer>", 1.0),  # '-' is invisible
    ([1, 5, 2, 5, 7], 22, "<answer>1.5 * 2 * 5 + 7</answer>", 1.0),  # 1.5 reads as 1 and 5
    ([3, 5, 7], 22, "<answer>3 * 5 + 7</answer>\n", 0.0),  # the last line is empty
    ([3, 5, 7], 22, "<answer>3 * 5 + 7</answer> done", 1.0),
    ([3, 5, 7], 22, "<answer>1</answer><answer>3 * 5 + 7</answer>", 1.0),  # last tag
    ([3, 5, 7], 22, "<answer>3 * 5 + 7</answer><answer>1</answer>", 0.1),
    ([3, 5, 7], 22, "<answer>3 × 5 + 7</answer>", 0.1),
    ([3, 5, 7], 22, "<answer>07 + 3 * 5</answer>", 0.1),  # 07 is a Python syntax error
    ([3, 5, 7], 22, "<answer>(3 * 5 + 7)</answer>", 1.0),
    ([3, 5, 7], 105, "<answer>3 * 5 * 7.0</answer>", 0.1),  # 7.0 adds a 0
    ([2, 3, 8], 1, "<answer>2 ** 3 // 8</answer>", 1.0),
]


@pytest.mark.parametrize("nums, target, completion, expected", PROBES)
def test_probe_completions_get_the_papers_reward(nums, target, completion, expected):
    assert authors_score(completion, nums, target) == pytest.approx(expected)
    assert ours(completion, nums, target) == pytest.approx(expected)


def test_paper_mode_is_selected_by_name_and_validated():
    task = get("countdown", mode="paper")
    assert task.mode == "paper" and task.reward.reward_format == 0.1
    with pytest.raises(ValueError, match="mode"):
        get("countdown", mode="tinyzero")
    # The strict default keeps its own rules.
    record = {"nums": [3, 5, 5], "target": 22}
    assert get("countdown").grade(record, "<answer>-3 + 5 * 5</answer>").reward == pytest.approx(0.1)
    assert task.grade(record, "<answer>-3 + 5 * 5</answer>").reward == 1.0


def test_paper_mode_is_bounded_on_hostile_answers():
    record = {"nums": [99, 99, 99], "target": 1}
    for answer in ("99**99**99", "(" * 201 + "99*99*99" + ")" * 201, "-" * 100_000 + "99*99*99",
                   "99" + "0" * 10_000 + "*99*99"):
        grade = PAPER.grade(record, f"<answer>{answer}</answer>")
        assert grade.reward == pytest.approx(0.1) and not grade.correct
    assert PAPER.grade(record, "<answer>" * 50_000).reward == 0.0


# ----------------------------------------------------------------------------- generated cases

_SPACES = st.sampled_from([" "] * 6 + ["", "", "\t", "  ", "\r", "\x0c", "\xa0"])


@st.composite
def _number_text(draw, value: int) -> str:
    form = draw(st.sampled_from(["plain"] * 30 + ["decimal", "point_decimal", "trailing_point",
                                                 "leading_zero", "negative", "unicode"]))
    if form == "decimal":
        return f"{value}.{draw(st.integers(0, 9))}"
    if form == "point_decimal":
        return f".{value}"
    if form == "trailing_point":
        return f"{value}."
    if form == "leading_zero":
        return f"0{value}"
    if form == "negative":
        return f"-{value}"
    if form == "unicode":
        return "".join(chr(0x0660 + int(d)) for d in str(value))
    return str(value)


@st.composite
def _expression(draw, numbers: list[int]) -> str:
    """An expression over the given numbers (in a drawn order), with drawn quirks."""
    order = draw(st.permutations(numbers))
    extra = draw(st.lists(st.integers(0, 30), max_size=1)) if draw(st.integers(0, 5)) == 0 else []
    if len(order) > 1 and draw(st.integers(0, 9)) == 0:
        order = order[:-1]  # a number left out
    parts = [draw(_number_text(n)) for n in list(order) + extra]
    ops = st.sampled_from(["+", "-", "*", "/"] * 8 + ["//", "**", "*-", "+-", "--", "***", ".", ""])
    text = parts[0]
    for part in parts[1:]:
        text += draw(_SPACES) + draw(ops) + draw(_SPACES) + part
        if draw(st.integers(0, 3)) == 0:
            text = "(" + text + ")"
    if draw(st.integers(0, 5)) == 0:
        text = "-" + text
    if draw(st.integers(0, 9)) == 0:
        text = draw(st.sampled_from(["(", "((", ")", "()", "x", "^", "[", "2"])) + text
    return text


def _value(expression: str):
    return _authors_evaluate(expression)


@st.composite
def _case(draw):
    numbers = draw(st.lists(st.integers(1, 99), min_size=2, max_size=4))
    expression = draw(_expression(numbers))
    value = _value(expression)
    if isinstance(value, (int, float)) and abs(value) < 10**6 and value == value and draw(st.integers(0, 4)):
        target = int(round(value)) if draw(st.integers(0, 3)) else int(value)
    else:
        target = draw(st.integers(0, 200))
    answer = expression
    kind = draw(st.sampled_from(["plain"] * 12 + ["rhs", "multiline", "newline_after", "trailing",
                                                  "two_tags", "unclosed", "nested_open", "no_tag"]))
    if kind == "rhs":
        answer = f"{expression} = {target}"
    elif kind == "multiline":
        cut = draw(st.integers(0, len(expression)))
        answer = expression[:cut] + "\n" + expression[cut:]
    inner_space = draw(st.sampled_from(["", " ", "  "]))
    tagged = f"<answer>{inner_space}{answer}{inner_space}</answer>"
    if kind == "two_tags":
        tagged = f"<answer>{draw(_expression(numbers))}</answer> {tagged}"
        if draw(st.booleans()):
            tagged = f"{tagged}<answer>{draw(st.integers(0, 99))}</answer>"
    elif kind == "unclosed":
        tagged = f"{tagged} <answer>{expression}"
    elif kind == "nested_open":
        tagged = f"<answer>{tagged}"
    elif kind == "no_tag":
        tagged = answer
    prefix = draw(st.sampled_from(["", "<think>\nLet me try.\n</think>\n", "<think>x</think> ",
                                   "Assistant: <think>x</think>\n", "<answer>1</answer>\n"]))
    suffix = {"newline_after": "\n", "trailing": draw(st.sampled_from([" ", " done", "\t", "<|endoftext|>"]))}.get(kind, "")
    return numbers, target, prefix + tagged + suffix


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_case())
def test_paper_mode_equals_the_authors_scorer_on_generated_completions(case):
    numbers, target, completion = case
    assert ours(completion, numbers, target) == pytest.approx(authors_score(completion, numbers, target)), completion


@settings(max_examples=500, deadline=None)
@given(st.lists(st.integers(0, 20), min_size=1, max_size=4), st.integers(-5, 50),
       st.text(alphabet="0123456789+-*/(). \t\r=x<>answer/\n", max_size=40))
def test_paper_mode_equals_the_authors_scorer_on_random_text(numbers, target, body):
    for completion in (f"<answer>{body}</answer>", body, f"t\n<answer> {body} </answer>"):
        assert ours(completion, numbers, target) == pytest.approx(authors_score(completion, numbers, target)), completion
