"""ARC (AI2 Reasoning Challenge): multiple choice, graded by the chosen label.

Labels are normalized to letters (a few ARC items use `1`-`4`; they are shown and graded as
`A`-`D`, and a completion must answer with the letter). The answer is taken, by priority
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
# article, not a label. Digits are not labels: prompts show every item's choices as letters.
_LABEL = r"(?:[*_]+\s*)?(?:\(\s*([A-Ha-h])\s*\)|(?!A\s+[a-z])(?!a\s+[a-z])([A-Ha-h])(?![\w']))"
# Separators are written so that no two adjacent quantifiers can match the same characters
# (no polynomial backtracking on long runs of spaces).
_MARKED = (
    re.compile(r"final answer(?: is)?\s*(?:[:：]\s*)?" + _LABEL, re.IGNORECASE),
    re.compile(r"answer is\s*(?:[:：]\s*)?" + _LABEL, re.IGNORECASE),
)
_ANSWER_COLON = re.compile(r"answer\s*[:：]\s*" + _LABEL, re.IGNORECASE)
_PAREN_LETTER = re.compile(r"\(([A-H])\)")
_BARE_LETTER = re.compile(r"(?<![\w'])(?!A\s+[a-z])([A-H])(?![\w'])")
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


def choices(record: Record) -> list[tuple[str, str]]:
    """The record's choices as (letter label, text) pairs, in order.

    Reads the ARC release layout (`question: {stem, choices: [{text, label}]}`) and the Hugging
    Face `ai2_arc` layout (`question: str`, `choices: {text: [...], label: [...]}`).
    """
    question = record["question"]
    if isinstance(question, Mapping):
        pairs = [(choice["label"], choice["text"]) for choice in question["choices"]]
    else:
        pairs = list(zip(record["choices"]["label"], record["choices"]["text"]))
    return [(normalize_label(label), str(text)) for label, text in pairs]


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

    def extract(self, completion: str) -> str | None:
        """The chosen letter, from explicit markers, a box or the last line (no choice texts)."""
        return self._extract(completion, options=None)

    def _extract(self, completion: str, options: list[tuple[str, str]] | None) -> str | None:
        for pattern in _MARKED:
            match = _last(pattern, completion)
            if match:
                return _label_from_match(match)
        boxed = last_boxed(completion)
        if boxed is not None:
            inner = _TEXT_WRAPPER.sub(r"\1", boxed).strip().strip("()").strip()
            if len(inner) == 1 and inner.upper() in LETTERS:
                return inner.upper()
            if options:
                label = _match_choice_text(inner, options)
                if label:
                    return label
        match = _last(_ANSWER_COLON, completion)
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
        match = _last(_PAREN_LETTER, last_line) or _last(_BARE_LETTER, last_line)
        return match.group(1) if match else None

    def reference_completion(self, record: Record) -> str:
        gold = self.gold_answer(record)
        text = dict(choices(record)).get(gold or "", "")
        return f"The answer is ({gold}) {text}.".replace(" .", ".")

    def _check(self, record: Record, completion: str) -> Verdict:
        gold = self.gold_answer(record)
        options = choices(record)
        label = self._extract(completion, options if self.choice_text_fallback else None)
        if label is None:
            return Verdict(False, None, "no_answer", False)
        if label not in {letter for letter, _ in options}:
            return Verdict(False, label, "not_a_choice", True)
        correct = label == gold
        return Verdict(correct, label, "label_match" if correct else "wrong_answer", True)
