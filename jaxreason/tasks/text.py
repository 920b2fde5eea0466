"""Bounded, linear-time text helpers shared by the graders: `\\boxed{}` extraction and numbers.

Everything here runs in the training process on model text, so each helper does work linear in
its input, uses no regex with nested ambiguous quantifiers (no catastrophic backtracking), and
never converts unbounded digit strings to numbers (`Fraction("1e999999999")` alone would hang).
"""

from __future__ import annotations

import re
from fractions import Fraction

# Longest digit string (integer part + fractional part) parsed as a number; longer is "not a
# number" rather than a slow big-int conversion.
MAX_NUMBER_DIGITS = 40

_BOX_COMMANDS = ("\\boxed", "\\fbox")


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` / `\\fbox{...}` / `\\boxed 5` in `text`, or None.

    Braces nest; escaped braces `\\{`, `\\}` do not count. A last box whose braces never close
    (a truncated completion) gives None: the final answer is malformed, and an earlier box is
    not the final answer.
    """
    start, command = -1, ""
    for candidate in _BOX_COMMANDS:
        position = text.rfind(candidate)
        if position > start:
            start, command = position, candidate
    if start < 0:
        return None
    index = start + len(command)
    end = len(text)
    # "\boxed {x}" is the same as "\boxed{x}" in LaTeX.
    brace = index
    while brace < end and text[brace] == " ":
        brace += 1
    if brace < end and text[brace] == "{":
        depth = 0
        position = brace
        while position < end:
            char = text[position]
            if char == "\\":
                position += 2  # an escaped character, e.g. \{ \} \\ ; never a brace
                continue
            if char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
                if depth == 0:
                    return text[brace + 1 : position]
            position += 1
        return None
    if index < end and text[index] == " ":
        # "\boxed 5": the next token, up to whitespace or "$".
        match = re.match(r" +([^\s$]+)", text[index : index + 256])
        return match.group(1) if match else None
    return None


def strip_boxed_wrapper(text: str) -> str:
    """`\\boxed{x}` -> `x` when the whole string is one box (answers given already boxed)."""
    stripped = text.strip()
    if stripped.startswith(_BOX_COMMANDS):
        inner = last_boxed(stripped)
        boxes = stripped.count("\\boxed") + stripped.count("\\fbox")
        if inner is not None and stripped.endswith("}") and boxes == 1:
            return inner
    return text


_PLAIN_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)")
_THOUSANDS = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def parse_plain_number(text: str, *, thousands: bool = True) -> Fraction | None:
    """`"-12"`, `"3.50"`, `".5"`, `"1,234.5"` -> exact `Fraction`; anything else -> None.

    No exponents (`1e9`), no unbounded digit strings: a parse is O(len(text)) and the result
    has at most `MAX_NUMBER_DIGITS` digits. thousands=False: a comma is never a separator.
    """
    text = text.strip()
    if thousands and _THOUSANDS.fullmatch(text):
        text = text.replace(",", "")
    if not _PLAIN_NUMBER.fullmatch(text):
        return None
    digits = sum(char.isdigit() for char in text)
    if digits == 0 or digits > MAX_NUMBER_DIGITS:
        return None
    if text.endswith("."):
        text = text[:-1]
    return Fraction(text)


# A number inside free text: optional minus, integer part with or without thousands separators,
# optional decimal part. Alternatives are disjoint enough that matching is linear.
TEXT_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")


def clean_number_text(text: str) -> str:
    """Removes what surrounds a number in an answer: `$`, `\\$`, `%`, commas, trailing `.`."""
    text = text.replace("\u2212", "-").replace("\\$", "").replace("$", "").replace("\\%", "")
    text = text.replace("%", "").replace(",", "").replace("\\!", "").strip()
    while text.endswith("."):
        text = text[:-1]
    return text.strip()


def format_fraction(value: Fraction) -> str:
    """`Fraction(18)` -> `"18"`, `Fraction(1, 2)` -> `"1/2"` (a canonical answer string)."""
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


_BOX_TOKENS = re.compile(
    r"\\(?:boxed|fbox)(?![a-zA-Z])"  # a box command
    r"|\\(?=\\(?:boxed|fbox)(?![a-zA-Z]))"  # "\\\\boxed" (doubly escaped): the box still counts
    r"|\\."  # an escaped character or another command: never a brace
    r"|[{}]",
    re.DOTALL,
)


def boxes(text: str) -> list[tuple[int, int, str]] | None:
    """Every outermost `\\boxed{...}` / `\\fbox{...}` / `\\boxed 5` as (start, end, content).

    One left-to-right pass over the braces and backslashes (a regex finds them; a stack pairs
    them), so the work is linear even for `\\boxed{` repeated 100,000 times. Boxes nested
    inside another box are part of the outer box's content. None if the last box never closes
    (a truncated completion: its final answer is malformed); [] if there is no box.
    """
    first = min((p for p in (text.find("\\boxed"), text.find("\\fbox")) if p >= 0), default=-1)
    if first < 0:
        return []
    found: list[tuple[int, int, str]] = []
    open_boxes: list[tuple[int, int, int]] = []  # (start, content start, depth at its "{")
    depth = 0
    last_start = -1
    skip_to = first
    end = len(text)
    for token in _BOX_TOKENS.finditer(text, first):
        position = token.start()
        if position < skip_to:
            continue
        value = token.group(0)
        if value == "{":
            depth += 1
        elif value == "}":
            depth -= 1
            if open_boxes and open_boxes[-1][2] == depth:
                start, content_start, _ = open_boxes.pop()
                if not open_boxes:
                    found.append((start, position + 1, text[content_start:position]))
        elif value in ("\\boxed", "\\fbox"):
            last_start = position
            index = token.end()
            brace = index
            while brace < end and text[brace] == " ":
                brace += 1
            if brace < end and text[brace] == "{":
                open_boxes.append((position, brace + 1, depth))
                depth += 1
                skip_to = brace + 1
            elif index < end and text[index] == " ":
                match = re.match(r" +([^\s$]+)", text[index : index + 256])
                if match and not open_boxes:
                    found.append((position, index + match.end(), match.group(1)))
                skip_to = index + (match.end() if match else 1)
    if last_start >= 0 and not any(start <= last_start < stop for start, stop, _ in found):
        return None  # the last box (or a box inside it) never closed
    return found
