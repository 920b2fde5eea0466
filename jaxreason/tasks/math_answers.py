"""Which boxes are the final answer, and answers with several parts (OlympiadBench, MATH lists).

Extraction rules (docs/grading.md lists them with examples):

* **Concluding part.** When a completion has a `</think>`, only the text after the last one
  counts if it has a box (the summary after a reasoning trace); otherwise the whole text.
* **Which boxes** (`MathTask.multi_box`):
  - "group" (default): the last box, plus the boxes right before it that are joined to it only
    by connectives -- math delimiters, spacing, commas, "and" / "or", `\\text{and}`, `\\quad`,
    a short `x =` -- e.g. `$\\boxed{(2, 2)}$ and $\\boxed{(6, 2)}$`, `\\boxed{-2} \\quad
    \\text{and} \\quad \\boxed{1}`; a box separated from the next by a sentence is an
    intermediate result, not part of the answer.
  - "paragraph": every box of the last paragraph (text between blank lines) holding a box.
  - "last": only the last box (the classic MATH rule).
* **A final-answer statement after the last box wins**: "... $\\boxed{255}$ ... Final Answer:
  The final answer is $10,455$." answers 10,455 (Math-Verify agrees). Only "final answer"
  followed by something that starts like math (a `$`, a digit, a sign, a bracket, a LaTeX
  command) counts, so "I hope this final answer is correct" does not.
* Without any box, a final-answer statement ("The final answer is X", "Final answer: X") is
  used where extraction is lenient, and always for a gold solution.

Comparison of several parts: each part that is a bare list (`1, -2`, no outer brackets) is
split into its items and each `a \\pm b` item becomes `a + b` and `a - b`; the two sides are
then equal when the items match one to one (duplicates collapsed), in any order -- unless the
gold is one tuple `(a, b)` and the prediction gives its items as separate boxes, which are then
matched in order. Items compare with the single-answer rules (tuples stay ordered inside).

Everything here is linear-time string work on bounded text; symbolic checks of item pairs are
left to the caller (a worker process).
"""

from __future__ import annotations

import functools
import re

from jaxreason.tasks.math_normalize import normalize_answer, split_top_level
from jaxreason.tasks.text import boxes, strip_boxed_wrapper

MULTI_BOX_RULES = ("group", "paragraph", "last")
# Most parts (boxes, or list items after splitting) compared; more is "too many parts".
MAX_PARTS = 16
# Longest gap between two boxes that can still be a connective.
_MAX_GAP = 80

_GAP_NOISE = re.compile(
    r"\\\[|\\\]|\\\(|\\\)|\$|\\\\|\\(?:q?quad|[,;:! ])|&|\*\*|"
    r"\\(?:text|textbf|textit|textnormal|mathrm|mbox)\s*\{([^{}]{0,20})\}"
)
_CONNECTIVE = re.compile(
    r"[\s,;.:]*(?:(?:and|or)\b[\s,;.:]*)?"
    r"(?:\(?[a-zA-Z](?:_\{?[a-zA-Z0-9]{1,3}\}?)?(?:\s*,\s*[a-zA-Z](?:_\{?[a-zA-Z0-9]{1,3}\}?)?){0,3}\)?\s*=\s*)?",
    re.IGNORECASE,
)
_FINAL_MARKER = re.compile(r"final answer", re.IGNORECASE)
_MARKER_TAIL = re.compile(r"\**\s*(?:is|:)?\s*(?:is\s*)?[:=]?\s*", re.IGNORECASE)
_MATH_START = re.compile(r'\\?"?\s*(?:\$|\\[\[(a-zA-Z]|[-+(\[{]?\d|[-+(\[{]|\.\d)')
_STATEMENT_WINDOW = 300


def _is_connective(gap: str) -> bool:
    if len(gap) > _MAX_GAP:
        return False
    cleaned = _GAP_NOISE.sub(lambda m: f" {m.group(1)} " if m.group(1) else " ", gap)
    return _CONNECTIVE.fullmatch(cleaned.strip()) is not None


def final_statement(text: str, start: int = 0) -> str | None:
    """The answer of the last "final answer ..." statement in `text[start:]`, or None."""
    last = None
    for last in _FINAL_MARKER.finditer(text, start):
        pass
    if last is None:
        return None
    tail_start = _MARKER_TAIL.match(text, last.end()).end()
    window = text[tail_start : tail_start + _STATEMENT_WINDOW]
    if not _MATH_START.match(window):
        return None
    in_math = False
    end = len(window)
    for index, char in enumerate(window):
        if char == "$":
            in_math = not in_math
        elif char == "\n" and not in_math:
            end = index
            break
        elif char == "." and not in_math and (index + 1 == len(window) or window[index + 1] in " \n\t"):
            end = index
            break
    answer = window[:end].strip().strip('\\"').strip()
    if answer.startswith("\\(") and answer.endswith("\\)"):
        answer = answer[2:-2].strip()
    if answer.startswith("\\[") and answer.endswith("\\]"):
        answer = answer[2:-2].strip()
    if len(answer) > 1 and answer.startswith("$") and answer.endswith("$") and answer.count("$") == 2:
        answer = answer.strip("$").strip()
    return answer or None


def extract_parts(text: str, rule: str = "group", *, statement_fallback: bool = False) -> list[str] | None:
    """The final answer of `text` as a list of parts (usually one), or None.

    rule: which boxes count ("group", "paragraph", "last"; see the module docstring).
    statement_fallback: without a box, use the last "final answer" statement.
    """
    if rule not in MULTI_BOX_RULES:
        raise ValueError(f"multi_box must be one of {MULTI_BOX_RULES}, got {rule!r}")
    think_end = text.rfind("</think>")
    found = None
    if think_end >= 0:
        found = boxes(text[think_end:])
        if found:
            text = text[think_end:]
    if not found:
        found = boxes(text)
    if found is None:
        return None  # the last box never closes
    if not found:
        if not statement_fallback:
            return None
        statement = final_statement(text)
        return [statement] if statement else None
    statement = final_statement(text, found[-1][1])
    if statement is not None:
        return [statement]
    chosen = [found[-1]]
    if rule == "group":
        for box in reversed(found[:-1]):
            if not _is_connective(text[box[1] : chosen[0][0]]) or len(chosen) >= MAX_PARTS:
                break
            chosen.insert(0, box)
    elif rule == "paragraph":
        paragraph_start = text.rfind("\n\n", 0, found[-1][0])
        chosen = [box for box in found if box[0] > paragraph_start][-MAX_PARTS:]
    return [strip_boxed_wrapper(content) for _, _, content in chosen]


@functools.lru_cache(maxsize=4096)
def _gold_parts_cached(text: str, rule: str) -> tuple[str, ...] | None:
    parts = extract_parts(text, rule, statement_fallback=True)
    return None if parts is None else tuple(parts)


def gold_solution_parts(solution: str, rule: str) -> list[str] | None:
    """`extract_parts` of a gold solution (with the statement fallback), cached for solutions
    up to 16k characters: a problem's gold is extracted again for every sample graded."""
    if len(solution) > 16_384:
        return extract_parts(solution, rule, statement_fallback=True)
    parts = _gold_parts_cached(solution, rule)
    return None if parts is None else list(parts)


def join_parts(parts: list[str]) -> str:
    """One display string for a list of parts (what `Grade.extracted` shows)."""
    return parts[0] if len(parts) == 1 else "; ".join(parts)


_PLUS_MINUS = re.compile(r"\\(?:pm|mp)(?![a-zA-Z])")


def _expand_plus_minus(item: str) -> list[str]:
    signs = _PLUS_MINUS.findall(item)
    if len(signs) != 1:
        return [item]
    first, second = ("+", "-") if signs[0] == "\\pm" else ("-", "+")
    left, right = _PLUS_MINUS.split(item, maxsplit=1)
    return [f"{left}{first}{right}", f"{left}{second}{right}"]


def split_items(parts: list[str]) -> list[str]:
    """Parts -> items: bare lists split at top-level commas/semicolons, `\\pm` expanded."""
    items: list[str] = []
    for part in parts:
        normalized = normalize_answer(part)
        opener, elements, _ = split_top_level(normalized.replace(";", ","))
        pieces = [part]
        if not opener and len(elements) > 1:
            pieces = [re.sub(r"^(?:and|or)\s*", "", e) for e in _split_raw(part)] or [part]
        for piece in pieces:
            items.extend(_expand_plus_minus(piece))
    return items


def _split_raw(part: str) -> list[str]:
    """Top-level comma / semicolon split of a raw answer, keeping the raw text of each item."""
    items, depth, current = [], 0, []
    index = 0
    text = re.sub(r",\s*\\!\s*", "", part.replace("{,}", ""))
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            if text[index + 1] in "{}":
                depth += 1 if text[index + 1] == "{" else -1
            current.append(text[index : index + 2])
            index += 2
            continue
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char in ",;" and depth == 0:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(char)
        index += 1
    items.append("".join(current).strip())
    return [item for item in items if item]


def dedupe(items: list[str]) -> list[str]:
    seen, unique = set(), []
    for item in items:
        key = normalize_answer(item)
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


def gold_is_one_tuple(parts: list[str]) -> bool:
    if len(parts) != 1:
        return False
    opener, elements, _ = split_top_level(normalize_answer(parts[0]))
    return opener in ("(", "[") and len(elements) > 1


def tuple_elements(part: str) -> list[str]:
    normalized = normalize_answer(part)
    return split_top_level(normalized)[1]


def match_items(matrix: list[list[bool | None]]) -> bool | None:
    """One-to-one matching of gold items (rows) to predicted items (columns).

    True if a perfect matching exists using True cells; False if none exists even counting
    undecided cells as True; None otherwise. Square matrices only (sizes were checked).
    """
    def perfect(allowed) -> bool:
        size = len(matrix)
        match_of_column: dict[int, int] = {}

        def augment(row: int, seen: set[int]) -> bool:
            for column in range(size):
                if allowed(matrix[row][column]) and column not in seen:
                    seen.add(column)
                    if column not in match_of_column or augment(match_of_column[column], seen):
                        match_of_column[column] = row
                        return True
            return False

        return all(augment(row, set()) for row in range(size))

    if perfect(lambda cell: cell is True):
        return True
    if not perfect(lambda cell: cell is not False):
        return False
    return None
