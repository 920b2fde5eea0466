"""Cheap, exact MATH answer equivalence: LaTeX normalization, numbers, tuples/sets/intervals.

Runs in the calling process, so it must be fast and unable to hang: string rewriting with
simple regexes on answers bounded by the caller, and numbers parsed by our own parser into
`Fraction`s. It decides most pairs (almost every gold-vs-gold pair is a string match); what it
cannot decide ("undecided") goes to math-verify in a worker process (`math_symbolic`).

The rewriting follows the MATH paper's `is_equiv` normalization (Hendrycks et al.) and section
6.2 of ALGORITHMS.md, plus thousands separators, unit words, degrees and `\\text{}` answers.
"""

from __future__ import annotations

import re
from fractions import Fraction

from jaxreason.tasks.text import parse_plain_number

# Relative tolerance for answers written as decimals (ALGORITHMS.md 6.2).
DECIMAL_TOLERANCE = Fraction(1, 10**6)

_SPACING_COMMANDS = re.compile(r"(?<!\\)\\(?:!|,|;|:|>| |quad\b|qquad\b|displaystyle\b|textstyle\b)")
_LEFT_RIGHT = re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)(?![a-zA-Z])")
_DEGREES = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|°|\\degree(?![a-zA-Z])")
_TEXT_COMMAND = r"\\(?:text|textbf|textit|textnormal|mbox|mathrm|mathbf|mathit|operatorname)\s*"
_TRAILING_TEXT_UNIT = re.compile(_TEXT_COMMAND + r"\{\s*[a-zA-Z][a-zA-Z .]*\}(?:\^\{?\d\}?)?\s*$")
_TEXT_WRAPPER = re.compile(_TEXT_COMMAND + r"\{([^{}]*)\}")
_WHOLE_TEXT = re.compile(_TEXT_COMMAND + r"\{([^{}]*)\}\s*\.?")
_UNIT_WORDS = re.compile(r"(-?[\d.,]*\d)\s+[a-zA-Z]{2,}(?:\s+[a-zA-Z]+)*\s*\.?(?:\^\{?\d\}?)?")
_SINGLE_VARIABLE_LHS = re.compile(r"[a-zA-Z](?:_\{?[a-zA-Z0-9]+\}?)?|\\[a-zA-Z]+")
_FRAC_TWO_DIGITS = re.compile(r"\\frac(\d)(\d)")
_FRAC_DIGIT_BRACE = re.compile(r"\\frac(\d)\{")
_FRAC_BRACE_DIGIT = re.compile(r"\\frac\{([^{}]*)\}(\d)")
_SQRT_CHAR = re.compile(r"\\sqrt([0-9a-zA-Z])")
_INTEGER_RATIO = re.compile(r"(-?\d+)/(\d+)")
_LEADING_POINT = re.compile(r"(?<![\d}])\.(\d)")
_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_CHOICE_LETTER = re.compile(r"\(([A-Za-z])\)")
_RELATIONS = (("\\leq", "\\le"), ("\\geq", "\\ge"), ("\\neq", "\\ne"), ("\\lt", "<"), ("\\gt", ">"))


def normalize_answer(answer: str) -> str:
    """A canonical string for a MATH answer: equal strings mean equal answers."""
    text = answer.strip().replace("\n", " ").replace("\u2212", "-")
    text = _SPACING_COMMANDS.sub(" ", text).replace("~", " ")
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = _LEFT_RIGHT.sub("", text)
    text = _DEGREES.sub("", text)
    text = text.replace("\\$", "").replace("$", "")
    text = text.replace("\\%", "").replace("%", "")
    text = text.replace("{,}", "")
    whole_text = _WHOLE_TEXT.fullmatch(text.strip())
    if whole_text:  # an answer that is only text, e.g. \text{(C)} or \text{odd}
        text = whole_text.group(1)
    else:
        text = _TRAILING_TEXT_UNIT.sub("", text).strip() or text
        text = _TEXT_WRAPPER.sub(r"\1", text)
    units = _UNIT_WORDS.fullmatch(text.strip())
    if units:  # "10 inches", "12 square units"
        text = units.group(1)
    text = text.strip().rstrip(".").strip()
    if _THOUSANDS.fullmatch(text):  # before spaces go: "1, 234" is a list, "1,234" is not
        text = text.replace(",", "")
    text = text.replace(" ", "")
    for long, short in _RELATIONS:
        text = text.replace(long, short)
    text = text.rstrip(".")
    if text.count("=") == 1:
        left, right = text.split("=")
        if _SINGLE_VARIABLE_LHS.fullmatch(left) and right:
            text = right
    text = _SQRT_CHAR.sub(r"\\sqrt{\1}", text)
    text = _FRAC_TWO_DIGITS.sub(r"\\frac{\1}{\2}", text)
    text = _FRAC_DIGIT_BRACE.sub(r"\\frac{\1}{", text)
    text = _FRAC_BRACE_DIGIT.sub(r"\\frac{\1}{\2}", text)
    text = _LEADING_POINT.sub(r"0.\1", text)
    ratio = _INTEGER_RATIO.fullmatch(text)
    if ratio:
        text = f"\\frac{{{ratio.group(1)}}}{{{ratio.group(2)}}}"
    letter = _CHOICE_LETTER.fullmatch(text)
    if letter:
        text = letter.group(1)
    if text.startswith("+"):
        text = text[1:]
    return text


_FRAC = re.compile(r"(-?)\\frac\{(-?[\d.]+)\}\{(-?[\d.]+)\}")


def parse_number(normalized: str) -> Fraction | None:
    """The exact value of a normalized numeric answer (`-3`, `0.25`, `\\frac{1}{4}`), or None."""
    value = parse_plain_number(normalized)
    if value is not None:
        return value
    match = _FRAC.fullmatch(normalized)
    if match:
        numerator = parse_plain_number(match.group(2))
        denominator = parse_plain_number(match.group(3))
        if numerator is None or denominator is None or denominator == 0:
            return None
        value = numerator / denominator
        return -value if match.group(1) else value
    return None


_OPENERS = {"(": ")", "[": "]", "\\{": "\\}", "{": "}"}


def split_top_level(normalized: str) -> tuple[str, list[str], str]:
    """`"(1,\\frac{1}{2}]"` -> `("(", ["1", "\\frac{1}{2}"], "]")`: brackets and elements.

    Only a single outer bracket pair is recognized; commas inside nested brackets or braces do
    not split. Without outer brackets the opener and closer are "".
    """
    opener = closer = ""
    body = normalized
    for candidate in ("\\{", "(", "["):
        if body.startswith(candidate):
            for close in ("\\}", ")", "]"):
                if body.endswith(close) and len(body) >= len(candidate) + len(close):
                    opener, closer = candidate, close
                    body = body[len(candidate) : len(body) - len(close)]
                    break
            break
    elements, depth, current = [], 0, []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body) and body[index + 1] in "{}":
            depth += 1 if body[index + 1] == "{" else -1
            current.append(body[index : index + 2])
            index += 2
            continue
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char == "," and depth == 0:
            elements.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    elements.append("".join(current))
    return opener, elements, closer


def _has_decimal_point(text: str) -> bool:
    return "." in text


def numbers_equal(gold: Fraction, pred: Fraction, gold_text: str, pred_text: str) -> bool:
    """Exact equality; a relative tolerance only when either side was written as a decimal."""
    if gold == pred:
        return True
    if _has_decimal_point(gold_text) or _has_decimal_point(pred_text):
        return abs(gold - pred) <= DECIMAL_TOLERANCE * max(1, abs(gold))
    return False


def _element_equal(gold: str, pred: str) -> bool | None:
    if gold == pred:
        return True
    gold_value, pred_value = parse_number(gold), parse_number(pred)
    if gold_value is not None and pred_value is not None:
        return numbers_equal(gold_value, pred_value, gold, pred)
    return None


def cheap_equal(gold: str, pred: str) -> tuple[bool | None, str]:
    """Decides equivalence of two raw answers without symbolic algebra.

    Returns (True, reason) or (False, reason) when decided, (None, "undecided") otherwise.
    Decisive negatives are only given when both sides are plain numbers (or same-length
    tuples of numbers), so symbolic equivalences are never missed.
    """
    gold_norm, pred_norm = normalize_answer(gold), normalize_answer(pred)
    if not pred_norm:
        return False, "empty_answer"
    if gold_norm == pred_norm:
        return True, "exact_match"
    if gold_norm.lower() == pred_norm.lower() and gold_norm.isalpha() and len(gold_norm) > 1:
        return True, "exact_match"  # text answers such as "Sunday", "odd"
    decided = _element_equal(gold_norm, pred_norm)
    if decided is not None:
        return decided, "numeric_match" if decided else "wrong_answer"
    gold_open, gold_items, gold_close = split_top_level(gold_norm)
    pred_open, pred_items, pred_close = split_top_level(pred_norm)
    if len(gold_items) > 1 and len(gold_items) == len(pred_items):
        ordered = gold_open in ("(", "[") or pred_open in ("(", "[")
        if (gold_open, gold_close) == (pred_open, pred_close):
            if ordered:
                verdicts = [_element_equal(g, p) for g, p in zip(gold_items, pred_items)]
                if all(verdicts):
                    return True, "tuple_match"
                if False in verdicts and all(v is not None for v in verdicts):
                    return False, "wrong_answer"
            else:
                remaining = list(pred_items)
                for item in gold_items:
                    match = next((p for p in remaining if _element_equal(item, p)), None)
                    if match is None:
                        break
                    remaining.remove(match)
                else:
                    return True, "set_match"
    return None, "undecided"

