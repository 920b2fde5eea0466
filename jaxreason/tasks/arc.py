"""ARC (AI2 Reasoning Challenge): multiple choice, graded by the chosen label.

Labels are normalized to letters. A few ARC items use `1`-`4` (23 in the ARC-Challenge train
split, 4 in dev); they are shown as `A`-`D`, and their gold `answerKey` ("2") maps to the letter
("B"). A completion may answer such an item with the letter or with the item's own number: every
rule below also reads `(2)` / `2` as a label for them, and grades it as its letter. For items
labelled with letters, digits are never labels (a digit there is more likely part of a choice's
text). The answer is taken, by priority
(docs/grading.md), from "Final answer: (X)", "answer is (X)", `\\boxed{X}`, "Answer: X", a
choice's text written out in full after "answer is" or as the last line (case-insensitive
exact match, unique), and finally a standalone label in the last line. (A plain ranking puts
the label in the last line before choice texts; a choice text such as "H, C, I" holds a
letter, so the more specific match goes first.)
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Mapping

from jaxreason.tasks.base import ChatMessages, Record, RewardConfig, Task, Verdict, register
from jaxreason.tasks.text import last_boxed

LETTERS = "ABCDEFGH"

# A label right after a marker: "(B)", "B", "b"; a bare "A"/"a" followed by a word is the
# article, not a label. Digits are labels only for items whose choices are numbered (see
# `_DIGIT_LABEL`): prompts show every item's choices as letters.
_LABEL = r"(?:[*_]+\s*)?(?:\(\s*([A-Ha-h])\s*\)|(?!A\s+[a-z])(?!a\s+[a-z])([A-Ha-h])(?![\w']))"
# "(2)" or "2", not "2.5", "2,000", "22" or "2nd".
_DIGIT_LABEL = r"(?:[*_]+\s*)?(?:\(\s*([1-8])\s*\)|([1-8])(?![\w']|[.,]\d))"
# Separators are written so that no two adjacent quantifiers can match the same characters
# (no polynomial backtracking on long runs of spaces).
_FINAL_MARKER = r"final answer(?: is)?\s*(?:[:：]\s*)?"
_IS_MARKER = r"answer is\s*(?:[:：]\s*)?"
_COLON_MARKER = r"answer\s*[:：]\s*"
_MARKED = (
    re.compile(_FINAL_MARKER + _LABEL, re.IGNORECASE),
    re.compile(_IS_MARKER + _LABEL, re.IGNORECASE),
)
_ANSWER_COLON = re.compile(_COLON_MARKER + _LABEL, re.IGNORECASE)
_MARKED_DIGIT = (re.compile(_FINAL_MARKER + _DIGIT_LABEL, re.IGNORECASE),
                 re.compile(_IS_MARKER + _DIGIT_LABEL, re.IGNORECASE))
_ANSWER_COLON_DIGIT = re.compile(_COLON_MARKER + _DIGIT_LABEL, re.IGNORECASE)
_PAREN_LETTER = re.compile(r"\(([A-H])\)")
_BARE_LETTER = re.compile(r"(?<![\w'])(?!A\s+[a-z])([A-H])(?![\w'])")
# In the last line, a numbered item's label is "(2)" anywhere or a line that is only "2" (a
# bare digit inside prose is more likely a count than a label).
_PAREN_DIGIT = re.compile(r"\(([1-8])\)")
_ONLY_DIGIT = re.compile(r"[\s*_.:(]*([1-8])[\s*_.:)]*")
_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|mathrm|mathbf)\s*\{([^{}]*)\}")
_ANSWER_TEXT = re.compile(r"(?:answer is|answer:)\s*([^\n]{1,300})", re.IGNORECASE)
_EDGE_PUNCTUATION = " \t*_\"'`.:;!,()[]"

ARC_INSTRUCTION = "Answer with the letter of the correct choice. End with 'The answer is (X)'."


def normalize_label(label: Any) -> str:
    """`"b"` -> `"B"`, `"2"` -> `"B"`: ARC's numeric labels map to letters by value."""
    text = str(label).strip().upper()
    if text.isdigit() and 1 <= int(text) <= len(LETTERS):
        return LETTERS[int(text) - 1]
    return text


def _raw_choices(record: Record) -> list[tuple[Any, Any]]:
    question = record["question"]
    if isinstance(question, Mapping):
        return [(choice["label"], choice["text"]) for choice in question["choices"]]
    return list(zip(record["choices"]["label"], record["choices"]["text"]))


def numbered(record: Record) -> bool:
    """Whether the item labels its choices `1`, `2`, ... rather than with letters."""
    labels = [str(label).strip() for label, _ in _raw_choices(record)]
    return bool(labels) and all(label.isdigit() for label in labels)


def choices(record: Record) -> list[tuple[str, str]]:
    """The record's choices as (letter label, text) pairs, in order.

    Reads the ARC release layout (`question: {stem, choices: [{text, label}]}`) and the Hugging
    Face `ai2_arc` layout (`question: str`, `choices: {text: [...], label: [...]}`).
    """
    return [(normalize_label(label), str(text)) for label, text in _raw_choices(record)]


def stem(record: Record) -> str:
    """The question text (either layout, see `choices`)."""
    question = record["question"]
    return str(question["stem"]) if isinstance(question, Mapping) else str(question)


def _label_from_match(match: re.Match[str]) -> str:
    return normalize_label(match.group(1) or match.group(2))


def _last(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    last = None
    for last in pattern.finditer(text):
        pass
    return last


def _match_choice_text(candidate: str, options: list[tuple[str, str]]) -> str | None:
    """The label of the unique choice whose text equals `candidate` (case-insensitive first)."""
    candidate = candidate.strip().strip(_EDGE_PUNCTUATION).strip()
    if not candidate:
        return None
    for fold in (str.casefold, lambda s: s):
        wanted = fold(candidate)
        found = [label for label, text in options if fold(text.strip().strip(_EDGE_PUNCTUATION)) == wanted]
        if len(found) == 1:
            return found[0]
    return None


def _fill(template: str, question: str, listed: str) -> str:
    # Not str.format: templates may hold literal braces; one pass, so a stem that contains
    # "{choices}" stays as written.
    values = {"stem": question, "choices": listed}
    return re.sub(r"\{(stem|choices)\}", lambda match: values[match.group(1)], template)


@register("arc")
@dataclasses.dataclass(frozen=True)
class ArcTask(Task):
    """ARC-style multiple-choice questions (`question.stem`, `question.choices`, `answerKey`;
    or the Hugging Face layout `question`, `choices.text`, `choices.label`, `answerKey`)."""

    reward: RewardConfig = dataclasses.field(default_factory=RewardConfig)
    choice_text_fallback: bool = True
    system_prompt: str | None = None
    plain_template: str = "Question: {stem}\n{choices}\nAnswer:"
    chat_template: str = "{stem}\n\n{choices}\n\n" + ARC_INSTRUCTION

    name = "arc"
    required_fields = ("question", "answerKey")

    def prompt(self, record: Record, *, chat: bool = False) -> str | ChatMessages:
        question = stem(record)
        listed = "\n".join(f"({label}) {text}" for label, text in choices(record))
        if not chat:
            return _fill(self.plain_template, question, listed)
        messages = [{"role": "user", "content": _fill(self.chat_template, question, listed)}]
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        return messages

    def gold_answer(self, record: Record) -> str | None:
        return normalize_label(record["answerKey"])

    def extract(self, completion: str, *, numbered: bool = False) -> str | None:
        """The chosen letter, from explicit markers, a box or the last line (no choice texts).
        `numbered`: the item's choices are labelled 1-4, so "(2)" / "2" also name a choice."""
        return self._extract(completion, options=None, numbered=numbered)

    def _extract(self, completion: str, options: list[tuple[str, str]] | None,
                 numbered: bool = False) -> str | None:
        for index, pattern in enumerate(_MARKED):
            match = _last(pattern, completion)
            if numbered:
                digit = _last(_MARKED_DIGIT[index], completion)
                if digit and (match is None or digit.start() > match.start()):
                    match = digit
            if match:
                return _label_from_match(match)
        boxed = last_boxed(completion)
        if boxed is not None:
            inner = _TEXT_WRAPPER.sub(r"\1", boxed).strip().strip("()").strip()
            if len(inner) == 1 and inner.upper() in LETTERS:
                return inner.upper()
            if numbered and len(inner) == 1 and inner in "12345678":
                return normalize_label(inner)
            if options:
                label = _match_choice_text(inner, options)
                if label:
                    return label
        match = _last(_ANSWER_COLON, completion)
        if numbered:
            digit = _last(_ANSWER_COLON_DIGIT, completion)
            if digit and (match is None or digit.start() > match.start()):
                match = digit
        if match:
            return _label_from_match(match)
        lines = completion.strip().splitlines()
        last_line = lines[-1] if lines else ""
        if options:
            # A whole choice text is more specific than a lone letter (choice "H, C, I").
            answer_text = _last(_ANSWER_TEXT, completion)
            for candidate in ([answer_text.group(1)] if answer_text else []) + [last_line]:
                label = _match_choice_text(candidate, options)
                if label:
                    return label
        if numbered:
            match = _last(_PAREN_DIGIT, last_line) or _ONLY_DIGIT.fullmatch(last_line)
            if match:
                return normalize_label(match.group(1))
        match = _last(_PAREN_LETTER, last_line) or _last(_BARE_LETTER, last_line)
        return match.group(1) if match else None

    def reference_completion(self, record: Record) -> str:
        gold = self.gold_answer(record)
        text = dict(choices(record)).get(gold or "", "")
        return f"The answer is ({gold}) {text}.".replace(" .", ".")

    def _check(self, record: Record, completion: str) -> Verdict:
        gold = self.gold_answer(record)
        options = choices(record)
        label = self._extract(completion, options if self.choice_text_fallback else None,
                              numbered=numbered(record))
        if label is None:
            return Verdict(False, None, "no_answer", False)
        if label not in {letter for letter, _ in options}:
            return Verdict(False, label, "not_a_choice", True)
        correct = label == gold
        return Verdict(correct, label, "label_match" if correct else "wrong_answer", True)
