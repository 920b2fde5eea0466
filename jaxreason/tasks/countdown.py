"""Countdown (TinyZero / cognitive behaviors): reach a target with + - * / using each number once.

The answer is the expression in the last `<answer>...</answer>`. It is checked by a small
grammar (docs/grading.md), never by `eval`:

    expr   := term (('+' | '-') term)*
    term   := factor (('*' | '/') factor)*
    factor := INT | '(' expr ')'          (unary minus only if allowed)

over a character whitelist (digits, `+ - * / ( )`, whitespace), with caps on tokens, digits
and parenthesis depth, evaluated with exact `fractions.Fraction`. `2**10`, `1e9`,
`__import__('os')` are syntax errors, not computations. `tinyzero_compat=True` reproduces
TinyZero's reward quirks (answer only on the last line, numbers read with `\\d+`, decimals
allowed, a 1e-5 tolerance) while still refusing `**` and anything `eval` would run.

`mode="paper"` is the cognitive-behaviors paper's reward exactly (the TinyZero scorer, case
by case, see `countdown_paper`): use it to reproduce the paper's numbers; the strict default
is the better training and evaluation signal.
"""

from __future__ import annotations

import collections
import dataclasses
import re
from fractions import Fraction
from typing import Any

from jaxreason.tasks import countdown_paper
from jaxreason.tasks.base import ChatMessages, Record, RewardConfig, Task, Verdict, register
from jaxreason.tasks.countdown_solver import solve

TINYZERO_PREFIX = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant "
    "solves it. The assistant first thinks about the reasoning process in the mind and then "
    "provides the user with the answer.\nUser: "
)
COUNTDOWN_QUESTION = (
    "Using the numbers {nums}, create an equation that equals {target}. You can use basic "
    "arithmetic operations (+, -, *, /) and each number can only be used once. Show your work "
    "in <think> </think> tags. And return the final answer in <answer> </answer> tags, for "
    "example <answer> (1 + 2) / 3 </answer>."
)
TINYZERO_ASSISTANT_PREFILL = "\nAssistant: Let me solve this step by step.\n<think>"
TINYZERO_SYSTEM_PROMPT = (
    "You are a helpful assistant. You first thinks about the reasoning process in the mind "
    "and then provides the user with the answer."
)

_MAX_ANSWER_CHARS = 1000
_MAX_NUMBER_DIGITS = 12
_TOLERANCE = Fraction(1, 10**5)
MODES = ("strict", "paper")


class ExpressionError(ValueError):
    """An answer that is not a valid Countdown expression (the message says why)."""


@dataclasses.dataclass(frozen=True)
class ExpressionRules:
    """What the expression checker accepts (see `CountdownTask` for the meaning of each)."""

    allow_unary_minus: bool = False
    allow_decimals: bool = False
    integer_intermediates: bool = False
    max_tokens: int = 64
    max_depth: int = 16


def tokenize(text: str, rules: ExpressionRules) -> list[str]:
    """Whitelisted tokens of `text`; raises `ExpressionError` on anything else."""
    allowed = "0123456789+-*/() \t\n\r" + ("." if rules.allow_decimals else "")
    tokens: list[str] = []
    index, end = 0, len(text)
    while index < end:
        char = text[index]
        if char not in allowed:
            raise ExpressionError(f"character {char!r} is not allowed")
        if char.isdigit() or char == ".":
            start = index
            while index < end and (text[index].isdigit() or (text[index] == "." and rules.allow_decimals)):
                index += 1
            number = text[start:index]
            if number.count(".") > 1 or number.startswith(".") or number.endswith("."):
                raise ExpressionError(f"malformed number {number[:20]!r}")
            if sum(c.isdigit() for c in number) > _MAX_NUMBER_DIGITS:
                raise ExpressionError("number has too many digits")
            tokens.append(number)
        elif char in "+-*/()":
            tokens.append(char)
            index += 1
        else:
            index += 1  # whitespace
        if len(tokens) > rules.max_tokens:
            raise ExpressionError(f"more than {rules.max_tokens} tokens")
    return tokens


class _Parser:
    """Recursive descent over a token list, depth-capped, evaluating with `Fraction`."""

    def __init__(self, tokens: list[str], rules: ExpressionRules) -> None:
        self.tokens = tokens
        self.rules = rules
        self.position = 0
        self.depth = 0
        self.numbers: list[Fraction] = []

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise ExpressionError("unexpected end of expression")
        self.position += 1
        return token

    def parse(self) -> Fraction:
        if not self.tokens:
            raise ExpressionError("empty expression")
        value = self.expression()
        if self.position != len(self.tokens):
            raise ExpressionError(f"unexpected {self.tokens[self.position]!r}")
        return value

    def expression(self) -> Fraction:
        value = self.term()
        while self.peek() in ("+", "-"):
            operator = self.take()
            value = self.apply(operator, value, self.term())
        return value

    def term(self) -> Fraction:
        value = self.factor()
        while self.peek() in ("*", "/"):
            operator = self.take()
            value = self.apply(operator, value, self.factor())
        return value

    def factor(self) -> Fraction:
        token = self.take()
        if token[0].isdigit():
            value = Fraction(token)
            self.numbers.append(value)
            return value
        if token == "(" or token == "-":
            self.depth += 1
            if self.depth > self.rules.max_depth:
                raise ExpressionError(f"nested deeper than {self.rules.max_depth}")
            if token == "(":
                value = self.expression()
                if self.take() != ")":
                    raise ExpressionError("unbalanced parentheses")
            elif self.rules.allow_unary_minus:
                value = -self.factor()
            else:
                raise ExpressionError("unary minus is not allowed")
            self.depth -= 1
            return value
        raise ExpressionError(f"unexpected {token!r}")

    def apply(self, operator: str, left: Fraction, right: Fraction) -> Fraction:
        if operator == "+":
            result = left + right
        elif operator == "-":
            result = left - right
        elif operator == "*":
            result = left * right
        else:
            if right == 0:
                raise ExpressionError("division by zero")
            result = left / right
        if self.rules.integer_intermediates and result.denominator != 1:
            raise ExpressionError(f"non-integral intermediate result {result}")
        return result


def evaluate(expression: str, rules: ExpressionRules = ExpressionRules()) -> tuple[Fraction, list[Fraction]]:
    """(value, number literals in order) of a Countdown expression; raises `ExpressionError`."""
    parser = _Parser(tokenize(expression, rules), rules)
    return parser.parse(), parser.numbers


def last_answer_span(text: str) -> str | None:
    """The content of the last complete `<answer>...</answer>` (linear time: two rfinds)."""
    end = text.rfind("</answer>")
    if end < 0:
        return None
    start = text.rfind("<answer>", 0, end)
    if start < 0:
        return None
    return text[start + len("<answer>") : end]


def _as_int_list(values: Any) -> list[int]:
    return [int(value) for value in values]


@register("countdown")
@dataclasses.dataclass(frozen=True)
class CountdownTask(Task):
    """Countdown with TinyZero's prompt and rewards (1 / 0.1 / 0 by default).

    require_all_numbers: each given number used exactly once (TinyZero); False allows using a
      subset, each at most once (ReasoningGym style).
    allow_unary_minus: accept `-3 + 5`; off by default (a number is given, not its negation).
    integer_intermediates: reject expressions whose intermediate results are not integers.
    reject_wrong_rhs: with `expr = value`, require `value` to be the target (else only the
      left side is judged).
    tinyzero_compat: TinyZero's reward rules: `<answer>` only on the final line, decimals
      allowed, numbers read with `\\d+`, unary minus allowed, |value - target| < 1e-5.
    mode: "strict" (the checker above, with the options above) or "paper": the authors' own
      scorer reproduced exactly (`countdown_paper`); the options above do not apply to it.
    max_tokens / max_depth: caps on the expression's size.
    """

    reward: RewardConfig = dataclasses.field(default_factory=lambda: RewardConfig.preset("tinyzero"))
    require_all_numbers: bool = True
    allow_unary_minus: bool = False
    integer_intermediates: bool = False
    reject_wrong_rhs: bool = False
    tinyzero_compat: bool = False
    mode: str = "strict"
    max_tokens: int = 64
    max_depth: int = 16
    system_prompt: str | None = None

    name = "countdown"
    required_fields = ("target", "nums")

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"countdown mode must be one of {MODES}, got {self.mode!r}")

    @property
    def rules(self) -> ExpressionRules:
        return ExpressionRules(
            allow_unary_minus=self.allow_unary_minus or self.tinyzero_compat,
            allow_decimals=self.tinyzero_compat,
            integer_intermediates=self.integer_intermediates,
            max_tokens=self.max_tokens,
            max_depth=self.max_depth,
        )

    def question(self, record: Record) -> str:
        return COUNTDOWN_QUESTION.format(nums=_as_int_list(record["nums"]), target=int(record["target"]))

    def prompt(self, record: Record, *, chat: bool = False) -> str | ChatMessages:
        """TinyZero's base prompt (ends in `<think>`), or one user message for chat models."""
        if not chat:
            return TINYZERO_PREFIX + self.question(record) + TINYZERO_ASSISTANT_PREFILL
        messages = [{"role": "user", "content": self.question(record)}]
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        return messages

    def gold_answer(self, record: Record) -> str | None:
        """The target; any expression reaching it is right, so there is no single gold text."""
        return str(int(record["target"]))

    def extract(self, completion: str) -> str | None:
        if self.mode == "paper":
            return countdown_paper.extract_answer(completion)
        text = completion.rstrip()
        if self.tinyzero_compat:
            text = text.rsplit("\n", 1)[-1]
        span = last_answer_span(text)
        return None if span is None else span.strip()

    def reference_completion(self, record: Record, *, chat: bool = False) -> str:
        """Solver steps in `<think>` and the expression in `<answer>` on the last line.

        For the base prompt (which already ends in `<think>`) the completion continues the
        thought; for chat it opens its own `<think>`. Raises ValueError if unsolvable.
        """
        solution = solve(_as_int_list(record["nums"]), int(record["target"]))
        if solution is None:
            raise ValueError(f"no solution for nums={_as_int_list(record['nums'])} target={record['target']}")
        thought = ("<think>\n" if chat else "\n") + solution.steps_text + "\n</think>\n"
        return thought + f"<answer> {solution.expression} </answer>"

    def _check(self, record: Record, completion: str) -> Verdict:
        if self.mode == "paper":
            answer, outcome = countdown_paper.score(completion, record["nums"], record["target"])
            return Verdict(outcome == "reached_target", answer, outcome, answer is not None)
        answer = self.extract(completion)
        if answer is None:
            return Verdict(False, None, "no_answer", False)
        if len(answer) > _MAX_ANSWER_CHARS:
            return Verdict(False, answer, "invalid_expression: too long", True)
        expression = answer
        right_side = None
        if "=" in answer:
            expression, right_side = answer.split("=", 1)
        target = Fraction(int(record["target"]))
        nums = _as_int_list(record["nums"])
        try:
            value, literals = evaluate(expression, self.rules)
            if right_side is not None and self.reject_wrong_rhs:
                rhs_value, _ = evaluate(right_side, ExpressionRules(max_tokens=3))
                if rhs_value != target:
                    raise ExpressionError("right-hand side is not the target")
        except ExpressionError as error:
            return Verdict(False, answer, f"invalid_expression: {error}", True)
        if self.tinyzero_compat:
            used = [int(digits) for digits in re.findall(r"\d+", expression)]
        else:
            used = [int(literal) for literal in literals]
        problem = self._numbers_problem(used, nums)
        if problem:
            return Verdict(False, answer, problem, True)
        if self.tinyzero_compat:
            correct = abs(value - target) < _TOLERANCE
        else:
            correct = value == target
        return Verdict(correct, answer, "reached_target" if correct else "wrong_value", True)

    def _numbers_problem(self, used: list[int], given: list[int]) -> str | None:
        used_counts, given_counts = collections.Counter(used), collections.Counter(given)
        extra = used_counts - given_counts
        if extra:
            return f"wrong_numbers: not given or reused {sorted(extra.elements())}"
        if self.require_all_numbers:
            missing = given_counts - used_counts
            if missing:
                return f"wrong_numbers: unused {sorted(missing.elements())}"
        return None
