"""MATH-style tasks (MATH, MATH-500, AIME, AMC, Minerva, OlympiadBench): boxed final answers.

The final answer is the concluding box of the completion -- or several boxes when the answer
has several parts (`math_answers`: which boxes count, a later "final answer" statement) --
and is compared with the gold answer, cheapest first: normalized string, then exact numbers /
tuples / sets / intervals / equations / lists (`math_normalize`, in this process); only pairs
those cannot decide go to math-verify in a worker process with a time limit (`math_symbolic`).
Gold answers come from the record's `answer` field when it has one (MATH-500, AIME; a list for
OlympiadBench's `final_answer`), otherwise from the concluding box(es) of its `solution`
(MATH, PRM800K splits). `benchmark=` selects a benchmark's answer conventions (BENCHMARKS).
docs/grading.md states every rule.
"""

from __future__ import annotations

import dataclasses
import re
from fractions import Fraction
from typing import Any

from jaxreason.tasks import math_answers, math_normalize, math_symbolic
from jaxreason.tasks.base import ChatMessages, Record, RewardConfig, Task, Verdict, register
from jaxreason.tasks.text import boxes, last_boxed, strip_boxed_wrapper

MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."

# Lenient extraction when no box is present: "The final answer is X", "Final answer: X".
_FINAL_ANSWER = re.compile(r"(?:final answer is|final answer:|the answer is)[ \t]*([^\n]{1,300})", re.IGNORECASE)


# Answer conventions per benchmark (`MathTask(benchmark=...)`); see docs/grading.md.
#   math / math500 / amc: the rules above (AMC letters compare as letters, values as numbers).
#   aime: the answer is an integer 0-999 (leading zeros allowed); anything else is wrong.
#   minerva: lm-eval's Minerva-math extraction ("Final Answer: The final answer is X. I hope it
#     is correct.", else the box) and its final-answer normalization, numbers within a relative
#     1e-4 (the Qwen2.5-Math grader's tolerance for these numeric answers).
#   olympiadbench: records with `question`, `final_answer` (a list: several answers), `unit`
#     (removed from both sides) and `error` (an absolute tolerance for numerical answers).
BENCHMARKS = ("math", "math500", "aime", "amc", "minerva", "olympiadbench")
MINERVA_RELATIVE_TOLERANCE = Fraction(1, 10**4)
_AIME_INTEGER = re.compile(r"0*(\d{1,3})")
_MINERVA_STATEMENT = re.compile(r"Final Answer: The final answer is(.{0,1000}?). I hope it is correct\.", re.DOTALL)


@register("math")
@dataclasses.dataclass(frozen=True)
class MathTask(Task):
    """MATH-style problems graded by the final `\\boxed{}` answer(s).

    problem_field / solution_field / answer_field: record field names (MATH: problem,
      solution; MATH-500 and AIME-style records also have `answer`). With
      benchmark="olympiadbench" the defaults become `question` and `final_answer`.
    lenient_extraction: without a box, fall back to "The final answer is X" / "Final answer: X".
    multi_box: which boxes form the answer: "group" (the last box and the boxes joined to it
      by connectives), "paragraph" (all boxes of the last paragraph with a box) or "last".
    benchmark: answer conventions of a benchmark (BENCHMARKS); None is "math".
    symbolic: use math-verify (in a worker) for pairs the cheap checks cannot decide.
    symbolic_timeout_s: limit for one symbolic comparison (a timeout counts as wrong).
    max_answer_chars: longer extracted answers are wrong without being parsed.
    """

    reward: RewardConfig = dataclasses.field(default_factory=RewardConfig)
    problem_field: str = "problem"
    solution_field: str = "solution"
    answer_field: str = "answer"
    lenient_extraction: bool = False
    multi_box: str = "group"
    benchmark: str | None = None
    symbolic: bool = True
    symbolic_timeout_s: float = 6.0
    max_answer_chars: int = 1000
    system_prompt: str | None = None
    plain_template: str = "Problem:\n{problem}\n\n" + MATH_INSTRUCTION + "\n\nSolution:"
    chat_template: str = "{problem}\n\n" + MATH_INSTRUCTION

    name = "math"
    required_fields = ("problem",)

    def __post_init__(self) -> None:
        if self.benchmark is not None and self.benchmark not in BENCHMARKS:
            raise ValueError(f"benchmark must be one of {BENCHMARKS}, got {self.benchmark!r}")
        if self.multi_box not in math_answers.MULTI_BOX_RULES:
            raise ValueError(f"multi_box must be one of {math_answers.MULTI_BOX_RULES}, got {self.multi_box!r}")
        if self.benchmark == "olympiadbench":
            if self.problem_field == "problem":
                object.__setattr__(self, "problem_field", "question")
            if self.answer_field == "answer":
                object.__setattr__(self, "answer_field", "final_answer")

    def load_records(self, path: str, *, split: str | None = None) -> list[dict[str, Any]]:
        from jaxreason.data.readers import read_records  # pure Python, no Grain at import

        return read_records(path, split=split, required_fields=(self.problem_field,))

    def prompt(self, record: Record, *, chat: bool = False) -> str | ChatMessages:
        problem = record[self.problem_field]
        if not chat:
            return self.plain_template.replace("{problem}", problem)
        messages = [{"role": "user", "content": self.chat_template.replace("{problem}", problem)}]
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        return messages

    def gold_answer(self, record: Record) -> str | None:
        """The gold answer as one string: the `answer` field, else the solution's last box."""
        answer: Any = record.get(self.answer_field)
        if isinstance(answer, (list, tuple)):
            parts = [_strip_dollars(str(a)) for a in answer if str(a).strip()]
            return math_answers.join_parts(parts) if parts else None
        if answer is not None and str(answer).strip():
            return strip_boxed_wrapper(str(answer).strip())
        solution = record.get(self.solution_field)
        return last_boxed(solution) if isinstance(solution, str) else None

    def gold_parts(self, record: Record) -> list[str] | None:
        """The gold answer as it is graded: a list of parts (several for multi-answer golds).

        A list `answer` (OlympiadBench's `final_answer`) gives one part per entry; an `answer`
        with boxes gives all of its boxes; another `answer` is one part; a `solution` gives its
        concluding box(es) by the same rule as completions, or its last "final answer"
        statement when it has no box.
        """
        answer: Any = record.get(self.answer_field)
        if isinstance(answer, (list, tuple)):
            parts = [_strip_dollars(str(a)) for a in answer if str(a).strip()]
        elif answer is not None and str(answer).strip():
            text = str(answer).strip()
            found = boxes(text) if ("\\boxed" in text or "\\fbox" in text) else None
            parts = [strip_boxed_wrapper(c) for _, _, c in found] if found else [_strip_dollars(text)]
        else:
            solution = record.get(self.solution_field)
            if not isinstance(solution, str):
                return None
            parts = math_answers.gold_solution_parts(solution, self.multi_box) or []
        unit = record.get("unit") if self.benchmark == "olympiadbench" else None
        parts = [_remove_unit(p, unit) for p in parts if p and p.strip()]
        return parts or None

    def extract_parts(self, completion: str) -> list[str] | None:
        """The completion's final answer as a list of parts, or None."""
        if self.benchmark == "minerva":
            match = None
            for match in _MINERVA_STATEMENT.finditer(completion):
                pass
            if match is not None and match.group(1).strip():
                return [match.group(1).strip()]
        parts = math_answers.extract_parts(completion, self.multi_box)
        if parts is not None or not self.lenient_extraction:
            return parts
        matches = _FINAL_ANSWER.findall(completion)
        if not matches:
            return None
        answer = matches[-1].strip().rstrip(".").strip()
        if answer.startswith("$") and answer.endswith("$") and len(answer) > 1:
            answer = answer.strip("$").strip()
        return [answer] if answer else None

    def extract(self, completion: str) -> str | None:
        parts = self.extract_parts(completion)
        return math_answers.join_parts(parts) if parts else None

    def reference_completion(self, record: Record) -> str:
        return str(record[self.solution_field])

    def _check(self, record: Record, completion: str) -> Verdict:
        gold = self.gold_parts(record)
        if gold is None:  # two MATH train solutions box nothing: \boxed{}
            return Verdict(False, None, "no_gold_answer", False)
        pred = self.extract_parts(completion)
        if pred is not None and self.benchmark == "olympiadbench":
            pred = [_remove_unit(p, record.get("unit")) for p in pred]
        verdict = self.compare_parts(gold, pred, self._numeric(record))
        if not verdict.correct and len(gold) > 1 and pred is not None and self._gold_from_solution(record):
            # A solution's last box is the MATH convention for its answer; the whole group of
            # concluding boxes (both roots, both points) is accepted as well.
            last = self.compare_parts(gold[-1:], pred, self._numeric(record))
            if last.correct:
                return dataclasses.replace(last, reason="last_box_match")
        return verdict

    def _gold_from_solution(self, record: Record) -> bool:
        answer = record.get(self.answer_field)
        return answer is None or (not isinstance(answer, (list, tuple)) and not str(answer).strip())

    def _numeric(self, record: Record) -> math_normalize.Numeric:
        if self.benchmark == "minerva":
            return (MINERVA_RELATIVE_TOLERANCE, None)
        if self.benchmark == "olympiadbench" and record.get("error") not in (None, ""):
            try:
                return (None, Fraction(str(record["error"]).split(",")[0].strip()))
            except (ValueError, ZeroDivisionError):
                pass
        return math_normalize.EXACT

    def compare(self, gold: str, pred: str | None) -> Verdict:
        """The verdict on an extracted answer `pred` against `gold` (both raw LaTeX)."""
        return self.compare_parts([gold], None if pred is None else [pred])

    def compare_parts(self, gold: list[str], pred: list[str] | None,
                      numeric: math_normalize.Numeric = math_normalize.EXACT) -> Verdict:
        """The verdict on predicted parts against gold parts (usually one each)."""
        if pred is None:
            return Verdict(False, None, "no_answer", False)
        display = math_answers.join_parts(pred)
        if any(len(p) > self.max_answer_chars for p in pred) or len(display) > 4 * self.max_answer_chars:
            return Verdict(False, display, "answer_too_long", True)
        if self.benchmark == "minerva":
            gold = [math_normalize.minerva_normalize(g) for g in gold]
            pred = [math_normalize.minerva_normalize(p) for p in pred]
        if self.benchmark == "aime":
            return self._compare_aime(gold, pred, display)
        if len(gold) == 1 and len(pred) == 1:
            decided, reason = math_normalize.cheap_equal(gold[0], pred[0], numeric)
            if decided is not None:
                return Verdict(decided, display, reason, True)
        if math_answers.gold_is_one_tuple(gold) and len(pred) > 1:  # (a, b) given as two boxes
            gold_items, pred_items, ordered = math_answers.tuple_elements(gold[0]), pred, True
        else:
            gold_items = math_answers.dedupe(math_answers.split_items(gold))
            pred_items = math_answers.dedupe(math_answers.split_items(pred))
            ordered = False
        if len(gold_items) == 1 and len(pred_items) == 1:
            return self._symbolic_single(gold_items[0], pred_items[0], display)
        if len(gold_items) != len(pred_items):
            return Verdict(False, display, "wrong_number_of_answers", True)
        if len(gold_items) > math_answers.MAX_PARTS:
            return Verdict(False, display, "too_many_answers", True)
        matrix = [[math_normalize.cheap_equal(g, p, numeric)[0] if (not ordered or i == j) else False
                   for j, p in enumerate(pred_items)] for i, g in enumerate(gold_items)]
        decided = math_answers.match_items(matrix)
        if decided is None and self.symbolic:
            cells = [(i, j) for i, row in enumerate(matrix) for j, cell in enumerate(row) if cell is None]
            verdicts, reason = math_symbolic.symbolic_pairs(
                [(gold_items[i], pred_items[j]) for i, j in cells], self.symbolic_timeout_s)
            if verdicts is None:
                return Verdict(False, display, reason, True)
            for (i, j), verdict in zip(cells, verdicts):
                matrix[i][j] = verdict
            decided = math_answers.match_items(matrix)
        correct = bool(decided)
        return Verdict(correct, display, "parts_match" if correct else "wrong_answer", True)

    def _symbolic_single(self, gold: str, pred: str, display: str) -> Verdict:
        decided, reason = math_normalize.cheap_equal(gold, pred)
        if decided is not None:
            return Verdict(decided, display, reason, True)
        if not self.symbolic:
            return Verdict(False, display, "wrong_answer", True)
        equal, reason = math_symbolic.symbolic_equal(gold, pred, self.symbolic_timeout_s)
        return Verdict(equal, display, reason, True)

    def _compare_aime(self, gold: list[str], pred: list[str], display: str) -> Verdict:
        values = []
        for answer in (gold, pred):
            match = _AIME_INTEGER.fullmatch(math_normalize.normalize_answer(answer[0])) if len(answer) == 1 else None
            values.append(int(match.group(1)) if match else None)
        if values[0] is None:
            return Verdict(False, display, "gold_not_an_aime_integer", True)
        if values[1] is None:
            return Verdict(False, display, "not_an_aime_integer", True)
        correct = values[0] == values[1]
        return Verdict(correct, display, "numeric_match" if correct else "wrong_answer", True)


def _strip_dollars(text: str) -> str:
    text = text.strip()
    if len(text) > 1 and text.startswith("$") and text.endswith("$") and text.count("$") == 2:
        return text[1:-1].strip()
    return text


def _remove_unit(answer: str, unit: Any) -> str:
    """OlympiadBench: the record's unit (e.g. `m/s`, `\\mathrm{~J}`) removed from an answer's end."""
    if not unit or not isinstance(unit, str):
        return answer
    text = answer.strip().rstrip(".").strip()
    for form in {unit.strip(), _strip_dollars(unit)}:
        if form and text.endswith(form) and len(text) > len(form):
            return text[: -len(form)].strip()
    return answer
