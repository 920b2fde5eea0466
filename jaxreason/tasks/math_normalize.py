"""Cheap, exact MATH answer equivalence: LaTeX normalization, numbers, tuples/sets/intervals.

Runs in the calling process, so it must be fast and unable to hang: string rewriting with
simple regexes on answers bounded by the caller, and numbers parsed by our own parser into
`Fraction`s. It decides most pairs (almost every gold-vs-gold pair is a string match); what it
cannot decide ("undecided") goes to math-verify in a worker process (`math_symbolic`).

The rewriting follows the MATH paper's `is_equiv` normalization (Hendrycks et al.) and section
6.2 of ALGORITHMS.md, plus thousands separators, unit words, degrees and `\\text{}` answers.
"""

from __future__ import annotations

import functools
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
_LHS_THOUSANDS = re.compile(
    r"((?:[a-zA-Z](?:_\{?[a-zA-Z0-9]+\}?)?|\\[a-zA-Z]+)\s*=\s*)?(-?\d{1,3}(?:,\d{3})+(?:\.\d+)?)"
)
_CHOICE_LETTER = re.compile(r"\(([A-Za-z])\)")
# "\\frac" with two backslashes (a doubly escaped source text) before a command name.
_DOUBLED_BACKSLASH = re.compile(r"\\\\(?=[a-zA-Z])")
# Thousands separators written for LaTeX: "10,\\!000", "10{,}000", "111, \\! 111" (spaces may
# surround the negative thin space; without it, "81, 256" is a list).
_THIN_SPACE_COMMA = re.compile(r"(?<=\d),\s*\\!\s*(?=\d)")
# A mixed number written with a space: "4 4/9", "-2 1/2".
_MIXED_PLAIN = re.compile(r"(-?)(\d{1,20})\s+(\d{1,20})/(\d{1,20})")
_MATRIX_ENV = re.compile(r"\\(begin|end)\{(?:pmatrix|bmatrix|Bmatrix|matrix|smallmatrix)\}")
_ARRAY_MATRIX = re.compile(r"\[?\\begin\{array\}\{[lcr|]*\}(.*)\\end\{array\}\]?")
_RELATIONS = (("\\leq", "\\le"), ("\\geq", "\\ge"), ("\\neq", "\\ne"), ("\\lt", "<"), ("\\gt", ">"))


@functools.lru_cache(maxsize=8192)
def normalize_answer(answer: str) -> str:
    """A canonical string for a MATH answer: equal strings mean equal answers. (Cached: the
    same gold answer is normalized for every sample of its problem.)"""
    text = answer.strip().replace("\n", " ").replace("\u2212", "-")
    if "\\begin" not in text:  # inside environments "\\\\" is a row break
        text = _DOUBLED_BACKSLASH.sub(r"\\", text)
    text = _THIN_SPACE_COMMA.sub("{,}", text)
    mixed = _MIXED_PLAIN.fullmatch(text.strip())
    if mixed and int(mixed.group(3)) < int(mixed.group(4)):  # "4 4/9" is 4 + 4/9
        text = f"{mixed.group(1)}{mixed.group(2)}\\frac{{{mixed.group(3)}}}{{{mixed.group(4)}}}"
    text = _SPACING_COMMANDS.sub(" ", text).replace("~", " ")
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = _LEFT_RIGHT.sub("", text)
    array = _ARRAY_MATRIX.fullmatch(text.strip())
    if array:  # \left[\begin{array}{cc}..\end{array}\right] is a matrix
        text = "\\begin{matrix}" + array.group(1) + "\\end{matrix}"
    text = _MATRIX_ENV.sub(lambda m: "\\" + m.group(1) + "{matrix}", text)
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
    thousands = _LHS_THOUSANDS.fullmatch(text)
    if thousands:  # before spaces go: "1, 234" is a list, "1,234" / "x = 1,234" are numbers
        text = (thousands.group(1) or "") + thousands.group(2).replace(",", "")
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
# 4\frac{4}{9}: a mixed number (MATH writes them so) when the fraction is proper.
_MIXED = re.compile(r"(-?)(\d{1,20})\\frac\{(\d{1,20})\}\{(\d{1,20})\}")
# 3\times10^{8}, 3.0\cdot10^{-5}, 3e8, 10^{5}: scientific notation (exponent up to 400).
_SCIENTIFIC = re.compile(r"(-?[\d.]+)(?:\\times|\\cdot|\*)10\^(?:\{(-?\d{1,3})\}|(-?\d))|(-?[\d.]+)[eE]([-+]?\d{1,3})")
_POWER_OF_TEN = re.compile(r"(-?)10\^(?:\{(-?\d{1,3})\}|(\d))")


def _scaled(mantissa: Fraction | None, exponent: str) -> Fraction | None:
    if mantissa is None or abs(int(exponent)) > 400:
        return None
    return mantissa * Fraction(10) ** int(exponent)


def parse_number(normalized: str) -> Fraction | None:
    """The exact value of a normalized numeric answer, or None.

    Plain numbers (`-3`, `0.25`; a comma is never a thousands separator here, normalization
    removed real ones), `\\frac{1}{4}`, mixed numbers `2\\frac{1}{2}`, and scientific notation
    `3\\times10^{8}`, `3e8`, `10^{-5}`.
    """
    value = parse_plain_number(normalized, thousands=False)
    if value is not None:
        return value
    match = _FRAC.fullmatch(normalized)
    if match:
        numerator = parse_plain_number(match.group(2), thousands=False)
        denominator = parse_plain_number(match.group(3), thousands=False)
        if numerator is None or denominator is None or denominator == 0:
            return None
        value = numerator / denominator
        return -value if match.group(1) else value
    match = _MIXED.fullmatch(normalized)
    if match and int(match.group(3)) < int(match.group(4)):
        value = int(match.group(2)) + Fraction(int(match.group(3)), int(match.group(4)))
        return -value if match.group(1) else value
    match = _SCIENTIFIC.fullmatch(normalized)
    if match:
        if match.group(1) is not None:
            return _scaled(parse_plain_number(match.group(1), thousands=False), match.group(2) or match.group(3))
        return _scaled(parse_plain_number(match.group(4), thousands=False), match.group(5))
    match = _POWER_OF_TEN.fullmatch(normalized)
    if match:
        value = _scaled(Fraction(1), match.group(2) or match.group(3))
        return -value if value is not None and match.group(1) else value
    return None


def is_decimal_form(text: str) -> bool:
    """Written as a decimal or in scientific notation (numbers compared with a tolerance)."""
    return "." in text or _SCIENTIFIC.fullmatch(text) is not None


_OPENERS = {"(": ")", "[": "]", "\\{": "\\}", "{": "}"}


def _closes_at_end(body: str, start: int, stop: int) -> bool:
    """Whether the bracket opened before `start` is still open at `stop` (so "(1,2),(3,4)" is
    a list of two pairs, not one pair of "1,2),(3,4")."""
    depth = 0
    index = start
    while index < stop:
        char = body[index]
        if char == "\\" and index + 1 < stop and body[index + 1] in "{}":
            depth += 1 if body[index + 1] == "{" else -1
            index += 2
        else:
            if char in "([{":
                depth += 1
            elif char in ")]}":
                depth -= 1
            index += 1
        if depth < 0:
            return False
    return True


def split_top_level(normalized: str) -> tuple[str, list[str], str]:
    """`"(1,\\frac{1}{2}]"` -> `("(", ["1", "\\frac{1}{2}"], "]")`: brackets and elements.

    Only a single outer bracket pair is recognized; commas inside nested brackets or braces do
    not split. Without outer brackets the opener and closer are "".
    """
    opener = closer = ""
    body = normalized
    for candidate in ("\\{", "(", "[", "{"):
        if body.startswith(candidate):
            for close in (("}",) if candidate == "{" else ("\\}", ")", "]")):
                if (body.endswith(close) and len(body) >= len(candidate) + len(close)
                        and _closes_at_end(body, len(candidate), len(body) - len(close))):
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


Numeric = tuple[Fraction | None, Fraction | None]  # (relative, absolute) tolerance overrides
EXACT: Numeric = (None, None)


def numbers_equal(gold: Fraction, pred: Fraction, gold_text: str, pred_text: str, numeric: Numeric = EXACT) -> bool:
    """Exact equality; a relative tolerance only when either side was written as a decimal or
    in scientific notation. `numeric` overrides: an absolute tolerance (OlympiadBench's
    `error`) or a relative one for every number (Minerva)."""
    if gold == pred:
        return True
    relative, absolute = numeric
    if absolute is not None:
        return abs(gold - pred) <= absolute
    if relative is not None:
        return abs(gold - pred) <= relative * abs(gold)
    if is_decimal_form(gold_text) or is_decimal_form(pred_text):
        return abs(gold - pred) <= DECIMAL_TOLERANCE * max(1, abs(gold))
    return False


def _element_equal(gold: str, pred: str, numeric: Numeric = EXACT) -> bool | None:
    if gold == pred:
        return True
    gold_value, pred_value = parse_number(gold), parse_number(pred)
    if gold_value is not None and pred_value is not None:
        return numbers_equal(gold_value, pred_value, gold, pred, numeric)
    return None


_EQUATION_ITEM = re.compile(r"([a-zA-Z](?:_\{?[a-zA-Z0-9]+\}?)?|\\[a-zA-Z]+)=(.+)")


def _named(items: list[str]) -> dict[str, str] | None:
    """`["k=45", "n=2"]` -> {"k": "45", "n": "2"}; None unless every item is `name=value`."""
    named = {}
    for item in items:
        match = _EQUATION_ITEM.fullmatch(item)
        if not match or "=" in match.group(2) or match.group(1) in named:
            return None
        named[match.group(1)] = match.group(2)
    return named


def _split_union(normalized: str) -> list[str]:
    parts, depth, start = [], 0, 0
    index = 0
    while index < len(normalized):
        char = normalized[index]
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0 and normalized.startswith("\\cup", index):
            parts.append(normalized[start:index])
            start = index + 4
        index += 1
    parts.append(normalized[start:])
    return parts


def cheap_equal(gold: str, pred: str, numeric: Numeric = EXACT) -> tuple[bool | None, str]:
    """Decides equivalence of two raw answers without symbolic algebra.

    Returns (True, reason) or (False, reason) when decided, (None, "undecided") otherwise.
    Decisive negatives are only given when both sides are plain numbers (or same-length
    tuples / lists of numbers, or lists of numbers of different lengths), so symbolic
    equivalences are never missed.
    """
    gold_norm, pred_norm = normalize_answer(gold), normalize_answer(pred)
    if not pred_norm:
        return False, "empty_answer"
    if gold_norm == pred_norm:
        return True, "exact_match"
    if gold_norm.lower() == pred_norm.lower() and gold_norm.isalpha() and len(gold_norm) > 1:
        return True, "exact_match"  # text answers such as "Sunday", "odd"
    decided = _element_equal(gold_norm, pred_norm, numeric)
    if decided is not None:
        return decided, "numeric_match" if decided else "wrong_answer"
    if "\\cup" in gold_norm and "\\cup" in pred_norm:  # unions of intervals, in any order
        gold_parts, pred_parts = _split_union(gold_norm), _split_union(pred_norm)
        if len(gold_parts) == len(pred_parts):
            remaining = list(pred_parts)
            for part in gold_parts:
                match = next((p for p in remaining if cheap_equal(part, p, numeric)[0]), None)
                if match is None:
                    break
                remaining.remove(match)
            else:
                return True, "union_match"
    gold_open, gold_items, gold_close = split_top_level(gold_norm)
    pred_open, pred_items, pred_close = split_top_level(pred_norm)
    gold_named, pred_named = _named(gold_items), _named(pred_items)
    if len(gold_items) > 1 and gold_named and not gold_open:
        if pred_named is not None and not pred_open:  # "k=45,n=2" vs "n=2,k=45": by name
            if set(gold_named) == set(pred_named):
                verdicts = [_element_equal(v, pred_named[k], numeric) for k, v in gold_named.items()]
                if all(verdicts):
                    return True, "equations_match"
                if False in verdicts and None not in verdicts:
                    return False, "wrong_answer"
        elif len(pred_items) == len(gold_items) and not pred_open:  # "45, 2": values in order
            verdicts = [_element_equal(v, p, numeric) for v, p in zip(gold_named.values(), pred_items)]
            if all(verdicts):
                return True, "equations_match"
    if len(gold_items) != len(pred_items) and not gold_open and not pred_open:
        numbers = [parse_number(item) for item in gold_items + pred_items]
        if None not in numbers:  # "32349" vs "32, 349": a number is not a list of two
            return False, "wrong_answer"
    if len(gold_items) > 1 and len(gold_items) == len(pred_items):
        ordered = gold_open in ("(", "[") or pred_open in ("(", "[")
        if (gold_open, gold_close) == (pred_open, pred_close):
            if ordered:
                verdicts = [_element_equal(g, p, numeric) for g, p in zip(gold_items, pred_items)]
                if all(verdicts):
                    return True, "tuple_match"
                if False in verdicts and all(v is not None for v in verdicts):
                    return False, "wrong_answer"
            else:
                remaining = list(pred_items)
                for item in gold_items:
                    match = next((p for p in remaining if _element_equal(item, p, numeric)), None)
                    if match is None:
                        break
                    remaining.remove(match)
                else:
                    return True, "set_match"
                if not gold_open and all(parse_number(i) is not None for i in gold_items + pred_items):
                    return False, "wrong_answer"  # two lists of numbers that differ
    return None, "undecided"


# lm-eval's Minerva-math final-answer normalization (Lewkowycz et al. 2022, appendix D), as
# lm-eval implements it: substitutions, then removed unit words and LaTeX leftovers, then the
# content of the last $...$, \text{}, \textbf{}, \overline{}, \boxed{} and brace fixes.
_MINERVA_SUBSTITUTIONS = (
    ("an ", ""), ("a ", ""), (".$", "$"), ("\\$", ""), ("\\ ", ""), (" ", ""), ("mbox", "text"),
    (",\\text{and}", ","), ("\\text{and}", ","), ("\\text{m}", "\\text{}"),
)
_MINERVA_REMOVED = (
    "square", "ways", "integers", "dollars", "mph", "inches", "ft", "hours", "km", "units",
    "\\ldots", "sue", "points", "feet", "minutes", "digits", "cents", "degrees", "cm", "gm",
    "pounds", "meters", "meals", "edges", "students", "childrentickets", "multiples",
    "\\text{s}", "\\text{.}", "\\text{\ns}", "\\text{}^2", "\\text{}^3", "\\text{\n}",
    "\\text{}", "\\mathrm{th}", "^\\circ", "^{\\circ}", "\\;", ",\\!", "{,}", '"', "\\dots",
)
_MINERVA_PATTERNS = (
    (re.compile(r"(.*?)(\$)(.*?)(\$)(.*)"), "$\\3$"),
    (re.compile(r"(\\text\{)(.*?)(\})"), "\\2"),
    (re.compile(r"(\\textbf\{)(.*?)(\})"), "\\2"),
    (re.compile(r"(\\overline\{)(.*?)(\})"), "\\2"),
    (re.compile(r"(\\boxed\{)(.*)(\})"), "\\2"),
    (re.compile(r"(frac)([^{])(.)"), "frac{\\2}{\\3}"),
    (re.compile(r"(sqrt)([^{])"), "sqrt{\\2}"),
)


def minerva_normalize(answer: str) -> str:
    """lm-eval's `normalize_final_answer` for Minerva math (answers are at most a few hundred
    characters here; every pattern is applied once)."""
    text = answer.split("=")[-1]
    for before, after in _MINERVA_SUBSTITUTIONS:
        text = text.replace(before, after)
    for removed in _MINERVA_REMOVED:
        text = text.replace(removed, "")
    for pattern, replacement in _MINERVA_PATTERNS:
        text = pattern.sub(replacement, text)
    text = text.replace("$", "")
    if text.replace(",", "").isdigit():
        text = text.replace(",", "")
    return text
