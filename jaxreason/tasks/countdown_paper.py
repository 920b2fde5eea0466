"""The Countdown reward of the cognitive-behaviors paper (the TinyZero scorer), without `eval`.

The authors score a completion in four steps; this module reproduces each one case by case:

1. Answer: the last line of the completion (text after the last "\\n"; nothing is stripped
   first, so a completion ending in a newline has an empty last line), and in it the content of
   the last non-overlapping `<answer>...</answer>` (the first `</answer>` after each
   `<answer>`), stripped of surrounding whitespace. None -> reward 0.
2. Numbers: every run of decimal digits (`\\d+`, Unicode digits included) read as an integer,
   compared as a sorted list with the given numbers: all must be used, each exactly once. A
   minus sign or a decimal point is invisible here (`-3` reads as 3, `1.5` as 1 and 5), and
   the digits of a right-hand side (`... = 22`) count too.
3. Characters: only digits, `+ - * / ( ) .` and whitespace (Python's `\\d` and `\\s`).
4. Value: the text is a Python arithmetic expression (the authors evaluate it with Python);
   its value must be within 1e-5 of the target.

Steps 2-4 failing gives the format reward (0.1), all passing gives 1.

Step 4 is done here by our own tokenizer and operator-precedence parser that follow Python's
grammar for exactly these characters -- integer literals (no leading zeros unless all zeros),
float literals (`1.`, `.5`, `007.5`), unary `+`/`-`, `**` (right-associative, binding tighter
than a unary minus on its left), `*`, `/`, `//`, parentheses (at most 200 deep, as CPython),
spaces, tabs and form feeds anywhere and carriage returns only inside parentheses -- and that
compute with Python's own int / float / complex arithmetic, so rounding, `ZeroDivisionError`,
`OverflowError` and complex powers behave as under `eval`. Anything `eval` would reject or
fail on is "invalid" here. The one deliberate difference: an integer power whose result would
exceed `MAX_POWER_BITS` bits is invalid instead of being computed (the authors' scorer would
spend minutes or hours on `99**99**99`); such a value can only equal the target after
cancelling against another such power, which no given number set of the paper allows.

Work is linear in the completion: the answer search is a chain of `str.find`, the number scan
is one regex pass with no backtracking, and the parser handles each token once.
"""

from __future__ import annotations

import operator
import re
from typing import Any, Sequence

# Largest integer power computed (bits of the result); larger is "invalid" (see above).
MAX_POWER_BITS = 100_000
# CPython's parser refuses more than 200 nested parentheses.
MAX_PAREN_DEPTH = 200
# CPython refuses to convert longer digit strings to int (ValueError -> not the given numbers).
MAX_INT_DIGITS = 4300
TOLERANCE = 1e-5

_DIGIT_RUNS = re.compile(r"\d+")
_ALLOWED = re.compile(r"[\d+\-*/().\s]+")

_OPEN, _CLOSE = "<answer>", "</answer>"


class PaperInvalid(ValueError):
    """What the authors' scorer would reject or fail on (the message says why)."""


def extract_answer(completion: str) -> str | None:
    """The stripped content of the last `<answer>...</answer>` on the completion's last line."""
    line = completion.rsplit("\n", 1)[-1]
    found = None
    position = 0
    while True:
        start = line.find(_OPEN, position)
        if start < 0:
            break
        end = line.find(_CLOSE, start + len(_OPEN))
        if end < 0:
            break
        found = (start + len(_OPEN), end)
        position = end + len(_CLOSE)
    if found is None:
        return None
    return line[found[0] : found[1]].strip()


def numbers_match(answer: str, numbers: Sequence[Any]) -> bool:
    """Whether the `\\d+` runs of `answer`, read as integers, are exactly the given numbers."""
    given = sorted(int(n) for n in numbers)
    used = []
    for match in _DIGIT_RUNS.finditer(answer):
        if len(used) >= len(given):
            return False
        digits = match.group(0)
        if len(digits) > MAX_INT_DIGITS:
            return False
        used.append(int(digits))
    return sorted(used) == given


# ----- tokenizer -----

_NUMBER, _OP, _LPAREN, _RPAREN = "number", "op", "(", ")"
_INLINE_SPACE = " \t\x0c"


def _read_number(text: str, index: int) -> tuple[int | float, int]:
    """A Python int or float literal made of ASCII digits and at most one '.', from `index`."""
    end = len(text)
    start = index
    while index < end and "0" <= text[index] <= "9":
        index += 1
    is_float = False
    if index < end and text[index] == ".":
        is_float = True
        index += 1
        while index < end and "0" <= text[index] <= "9":
            index += 1
    literal = text[start:index]
    if literal == ".":
        raise PaperInvalid("'.' is not a number")
    if is_float:
        return float(literal), index
    if len(literal) > 1 and literal[0] == "0" and literal.strip("0"):
        raise PaperInvalid("leading zeros in an integer literal")
    if len(literal) > MAX_INT_DIGITS:
        raise PaperInvalid("integer literal too long")
    return int(literal), index


def tokenize(text: str) -> list[tuple[str, Any]]:
    """Python's tokens for an arithmetic expression over the authors' characters."""
    tokens: list[tuple[str, Any]] = []
    index, end, depth = 0, len(text), 0
    while index < end:
        char = text[index]
        if char in _INLINE_SPACE:
            index += 1
        elif char == "\r":  # a line break: only allowed inside parentheses
            if depth == 0:
                raise PaperInvalid("line break outside parentheses")
            index += 1
        elif "0" <= char <= "9" or char == ".":
            value, index = _read_number(text, index)
            tokens.append((_NUMBER, value))
        elif char == "*" or char == "/":
            if index + 1 < end and text[index + 1] == char:
                tokens.append((_OP, char * 2))
                index += 2
            else:
                tokens.append((_OP, char))
                index += 1
        elif char == "+" or char == "-":
            tokens.append((_OP, char))
            index += 1
        elif char == "(":
            depth += 1
            if depth > MAX_PAREN_DEPTH:
                raise PaperInvalid("too many nested parentheses")
            tokens.append((_LPAREN, char))
            index += 1
        elif char == ")":
            depth -= 1
            tokens.append((_RPAREN, char))
            index += 1
        else:  # non-ASCII digits, other Unicode whitespace: Python's tokenizer refuses them
            raise PaperInvalid(f"character {char!r} is not Python source")
    return tokens


# ----- parser / evaluator (operator precedence, no recursion) -----

_BINARY = {"+": (1, operator.add), "-": (1, operator.sub), "*": (2, operator.mul),
           "/": (2, operator.truediv), "//": (2, operator.floordiv), "**": (4, None)}
_UNARY_PRECEDENCE = 3


def _power(base: Any, exponent: Any) -> Any:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        if exponent * (abs(base).bit_length() - 1) > MAX_POWER_BITS:
            raise PaperInvalid("power too large to compute")
    return operator.pow(base, exponent)


def _apply(operators: list[str], values: list[Any]) -> None:
    op = operators.pop()
    if op in ("u-", "u+"):
        value = values.pop()
        values.append(-value if op == "u-" else +value)
        return
    right = values.pop()
    left = values.pop()
    if op == "**":
        values.append(_power(left, right))
    else:
        values.append(_BINARY[op][1](left, right))


def _precedence(op: str) -> int:
    return _UNARY_PRECEDENCE if op in ("u-", "u+") else _BINARY[op][0]


def evaluate(text: str) -> Any:
    """The value Python's `eval` gives `text` (int, float or complex); raises `PaperInvalid`
    where `eval` would raise (syntax, zero division, overflow, a non-number result)."""
    tokens = tokenize(text)
    values: list[Any] = []
    operators: list[str] = []
    expect_operand = True
    try:
        for kind, token in tokens:
            if expect_operand:
                if kind == _NUMBER:
                    values.append(token)
                    expect_operand = False
                elif kind == _LPAREN:
                    operators.append("(")
                elif kind == _OP and token in ("+", "-"):
                    operators.append("u" + token)
                else:  # ")" after "(" or an operator, a binary-only operator: syntax error
                    raise PaperInvalid(f"unexpected {token!r}")
                continue
            if kind == _OP:
                precedence = _BINARY[token][0]
                right_assoc = token == "**"
                while operators and operators[-1] != "(":
                    top = _precedence(operators[-1])
                    if top > precedence or (top == precedence and not right_assoc):
                        _apply(operators, values)
                    else:
                        break
                operators.append(token)
                expect_operand = True
            elif kind == _RPAREN:
                while operators and operators[-1] != "(":
                    _apply(operators, values)
                if not operators:
                    raise PaperInvalid("unbalanced ')'")
                operators.pop()
            else:  # a number or "(" right after an operand: a syntax error or a call of a number
                raise PaperInvalid(f"unexpected {token!r}")
        if expect_operand:
            raise PaperInvalid("incomplete expression")
        while operators:
            if operators[-1] == "(":
                raise PaperInvalid("unbalanced '('")
            _apply(operators, values)
    except (ZeroDivisionError, OverflowError, TypeError, ValueError) as error:
        if isinstance(error, PaperInvalid):
            raise
        raise PaperInvalid(f"{type(error).__name__} while evaluating") from None
    return values[0]


def score(completion: str, numbers: Sequence[Any], target: Any) -> tuple[str | None, str]:
    """(answer, outcome) with outcome "no_answer", "reached_target" or a reason for 0.1."""
    answer = extract_answer(completion)
    if answer is None:
        return None, "no_answer"
    if not numbers_match(answer, numbers):
        return answer, "wrong_numbers"
    if not _ALLOWED.fullmatch(answer):
        return answer, "invalid_expression: characters"
    try:
        value = evaluate(answer)
        close = abs(value - int(target)) < TOLERANCE
    except PaperInvalid as error:
        return answer, f"invalid_expression: {error}"
    except (OverflowError, TypeError, ValueError):
        return answer, "invalid_expression: value"
    return answer, "reached_target" if close else "wrong_value"
