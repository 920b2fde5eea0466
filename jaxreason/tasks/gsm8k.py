"""GSM8K: grade-school word problems with an integer answer after `####`.

The gold answer is the number after the last `####` of the dataset's `answer` field. A
completion's answer is the number after the last explicit marker, "Final answer: X" (the
Iterative RPO format), "#### X" or "The answer is X"; else the number in the last `\\boxed{X}`;
else, in lenient mode, the last number in the text. (Ranking the markers by kind would be the
obvious rule; the last one is used instead because one GSM8K gold solution says "the final answer is
15 gallons * 8 pints / gallon = 120 pints" before "#### 120".)

Numbers compare exactly as `Fraction`s after removing `$`, commas and `%`, so `18`, `18.00`,
`$18` and `18.` are the same answer; floats are never compared for equality.
"""

from __future__ import annotations

import dataclasses
import re
from fractions import Fraction

from jaxreason.tasks.base import ChatMessages, Record, RewardConfig, Task, Verdict, register
from jaxreason.tasks.text import (
    TEXT_NUMBER,
    clean_number_text,
    format_fraction,
    last_boxed,
    parse_plain_number,
)

# Markers after which the answer follows, highest priority first.
_MARKERS = (
    re.compile(r"final answer(?: is)?\s*[:：]?", re.IGNORECASE),
    re.compile(r"####"),
    re.compile(r"answer is\s*[:：]?", re.IGNORECASE),
)
# How far after a marker the number may start (characters).
_WINDOW = 100
_CALCULATOR_ANNOTATION = re.compile(r"<<[^<>]{0,200}>>")

GSM8K_INSTRUCTION = (
    "Solve the problem step by step. Write the final numeric answer on the last line as "
    "'#### <answer>'."
)


def _clean(text: str) -> str:
    return text.replace("\u2212", "-").replace("\\$", "").replace("$", "")


def _first_number(text: str) -> str | None:
    match = TEXT_NUMBER.search(text)
    return match.group(0) if match else None


def _value(number_text: str) -> Fraction | None:
    return parse_plain_number(clean_number_text(number_text))


@register("gsm8k")
@dataclasses.dataclass(frozen=True)
class GSM8KTask(Task):
    """GSM8K and other single-number word problems.

    lenient_extraction: fall back to the last number of the completion when no marker or box
      gives the answer (the answer still counts as format-wrong for the format reward).
    strip_calculator_annotations: remove `<<48/2=24>>` from reference completions.
    """

    reward: RewardConfig = dataclasses.field(default_factory=RewardConfig)
    question_field: str = "question"
    answer_field: str = "answer"
    lenient_extraction: bool = True
    strip_calculator_annotations: bool = True
    system_prompt: str | None = None
    plain_template: str = "Question: {question}\nAnswer:"
    chat_template: str = "{question}\n\n" + GSM8K_INSTRUCTION

    name = "gsm8k"
    required_fields = ("question", "answer")

    def prompt(self, record: Record, *, chat: bool = False) -> str | ChatMessages:
        question = record[self.question_field]
        if not chat:
            return self.plain_template.replace("{question}", question)
        messages = [{"role": "user", "content": self.chat_template.replace("{question}", question)}]
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        return messages

    def gold_answer(self, record: Record) -> str | None:
        answer = str(record[self.answer_field])
        tail = answer.rsplit("####", 1)[-1] if "####" in answer else answer
        number = _first_number(_clean(tail))
        value = _value(number) if number else None
        return format_fraction(value) if value is not None else None

    def _extract_with_format(self, completion: str) -> tuple[str | None, bool]:
        text = _clean(completion)
        # The last explicit marker followed by a number wins: a model that restates or
        # corrects itself means the later answer ("the final answer is 15 gallons * 8 =
        # 120 ... #### 120" is 120, not 15).
        best_position, best_number = -1, None
        for marker in _MARKERS:
            for match in marker.finditer(text):
                if match.start() > best_position:
                    number = _first_number(text[match.end() : match.end() + _WINDOW])
                    if number is not None:
                        best_position, best_number = match.start(), number
        if best_number is not None:
            return best_number, True
        boxed = last_boxed(completion)
        if boxed is not None:
            number = _first_number(_clean(boxed))
            if number is not None:
                return number, True
        if self.lenient_extraction:
            last_number = None
            for last_number in TEXT_NUMBER.finditer(text):
                pass
            if last_number is not None:
                return last_number.group(0), False
        return None, False

    def extract(self, completion: str) -> str | None:
        return self._extract_with_format(completion)[0]

    def reference_completion(self, record: Record) -> str:
        answer = str(record[self.answer_field])
        if self.strip_calculator_annotations:
            answer = _CALCULATOR_ANNOTATION.sub("", answer)
        return answer

    def _check(self, record: Record, completion: str) -> Verdict:
        gold = self.gold_answer(record)
        if gold is None:
            return Verdict(False, None, "no_gold_answer", False)
        number, format_ok = self._extract_with_format(completion)
        if number is None:
            return Verdict(False, None, "no_answer", False)
        value = _value(number)
        if value is None:
            return Verdict(False, number, "unparsable_number", format_ok)
        correct = value == Fraction(gold)
        return Verdict(correct, number, "numeric_match" if correct else "wrong_answer", format_ok)
