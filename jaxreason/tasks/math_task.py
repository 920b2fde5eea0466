"""MATH-style tasks (MATH, MATH-500, AIME, AMC, Minerva): the answer is the last `\\boxed{}`.

Grading, cheapest first: the last box of the completion is compared with the gold answer by
normalized string, then as exact numbers / tuples / sets (`math_normalize`, in this process);
only pairs those cannot decide go to math-verify in a worker process with a time limit
(`math_symbolic`). Gold answers come from the record's `answer` field when it has one
(MATH-500, AIME), otherwise from the last box of its `solution` (MATH, PRM800K splits).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from jaxreason.tasks import math_normalize, math_symbolic
from jaxreason.tasks.base import ChatMessages, Record, RewardConfig, Task, Verdict, register
from jaxreason.tasks.text import last_boxed, strip_boxed_wrapper

MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."

# Lenient extraction when no box is present: "The final answer is X", "Final answer: X".
_FINAL_ANSWER = re.compile(r"(?:final answer is|final answer:|the answer is)[ \t]*([^\n]{1,300})", re.IGNORECASE)


@register("math")
@dataclasses.dataclass(frozen=True)
class MathTask(Task):
    """MATH-style problems graded by the final `\\boxed{}` answer.

    problem_field / solution_field / answer_field: record field names (MATH: problem,
      solution; MATH-500 and AIME-style records also have `answer`).
    lenient_extraction: without a box, fall back to "The final answer is X" / "Final answer: X".
    symbolic: use math-verify (in a worker) for pairs the cheap checks cannot decide.
    symbolic_timeout_s: limit for one symbolic comparison (a timeout counts as wrong).
    max_answer_chars: longer extracted answers are wrong without being parsed.
    """

    reward: RewardConfig = dataclasses.field(default_factory=RewardConfig)
    problem_field: str = "problem"
    solution_field: str = "solution"
    answer_field: str = "answer"
    lenient_extraction: bool = False
    symbolic: bool = True
    symbolic_timeout_s: float = 6.0
    max_answer_chars: int = 1000
    system_prompt: str | None = None
    plain_template: str = "Problem:\n{problem}\n\n" + MATH_INSTRUCTION + "\n\nSolution:"
    chat_template: str = "{problem}\n\n" + MATH_INSTRUCTION

    name = "math"
    required_fields = ("problem",)

    def prompt(self, record: Record, *, chat: bool = False) -> str | ChatMessages:
        problem = record[self.problem_field]
        if not chat:
            return self.plain_template.replace("{problem}", problem)
        messages = [{"role": "user", "content": self.chat_template.replace("{problem}", problem)}]
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        return messages

    def gold_answer(self, record: Record) -> str | None:
        answer: Any = record.get(self.answer_field)
        if answer is not None and str(answer).strip():
            return strip_boxed_wrapper(str(answer).strip())
        solution = record.get(self.solution_field)
        return last_boxed(solution) if isinstance(solution, str) else None

    def extract(self, completion: str) -> str | None:
        boxed = last_boxed(completion)
        if boxed is not None or not self.lenient_extraction:
            return boxed
        matches = _FINAL_ANSWER.findall(completion)
        if not matches:
            return None
        answer = matches[-1].strip().rstrip(".").strip()
        if answer.startswith("$") and answer.endswith("$") and len(answer) > 1:
            answer = answer.strip("$").strip()
        return answer or None

    def reference_completion(self, record: Record) -> str:
        return str(record[self.solution_field])

    def _check(self, record: Record, completion: str) -> Verdict:
        gold = self.gold_answer(record)
        if gold is None or not gold.strip():  # two MATH train solutions box nothing: \boxed{}
            return Verdict(False, None, "no_gold_answer", False)
        pred = self.extract(completion)
        return self.compare(gold, pred)

    def compare(self, gold: str, pred: str | None) -> Verdict:
        """The verdict on an extracted answer `pred` against `gold` (both raw LaTeX)."""
        if pred is None:
            return Verdict(False, None, "no_answer", False)
        if len(pred) > self.max_answer_chars:
            return Verdict(False, pred, "answer_too_long", True)
        decided, reason = math_normalize.cheap_equal(gold, pred)
        if decided is not None:
            return Verdict(decided, pred, reason, True)
        if not self.symbolic:
            return Verdict(False, pred, "wrong_answer", True)
        equal, reason = math_symbolic.symbolic_equal(gold, pred, self.symbolic_timeout_s)
        return Verdict(equal, pred, reason, True)
