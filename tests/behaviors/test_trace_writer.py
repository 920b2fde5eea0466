"""The Countdown trace writer (`jaxreason.data.countdown_traces`): valid traces, behavior
switches respected (counted by the classifier), the intended answer correctness per arm."""

from __future__ import annotations

import collections
import random
import re
from fractions import Fraction

import pytest

from jaxreason import behaviors, tasks
from jaxreason.data import countdown_traces as ct
from jaxreason.data import synthetic

NUM = 60  # instances per arm
OPTIONS = {"num_train": NUM, "num_eval": 20}
_STEP = re.compile(r"^(\d+) ([-+*/]) (\d+) = (\d+)")
_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
        "/": lambda a, b: Fraction(a, b)}


@pytest.fixture(scope="module")
def arm_records() -> dict[str, list[dict]]:
    return {arm: synthetic.generate("countdown_traces", {**OPTIONS, "arm": arm}, 3)[0]
            for arm in ct.ARMS}


def _thought(completion: str) -> str:
    return completion.split("</think>")[0]


def _attempts(thought: str) -> list[list[tuple[int, str, int, int]]]:
    """The step lines of a thought, split into attempts at each backtrack phrase."""
    attempts: list[list[tuple[int, str, int, int]]] = [[]]
    for line in thought.split("\n"):
        if line == ct.BACKTRACK_PHRASE:
            attempts.append([])
            continue
        match = _STEP.match(line)
        if match:
            a, op, b, c = match.groups()
            attempts[-1].append((int(a), op, int(b), int(c)))
    return attempts


def test_every_arithmetic_line_is_true_and_each_attempt_uses_each_number_once(arm_records):
    for arm, records in arm_records.items():
        if ct.ARMS[arm].think != "trace":
            continue
        for record in records:
            for attempt in _attempts(_thought(record["completion"])):
                assert attempt, (arm, record["completion"])
                pool = collections.Counter(record["nums"])
                for a, op, b, c in attempt:
                    assert _OPS[op](a, b) == c, (arm, record["completion"])
                    for operand in (a, b):
                        assert pool[operand] > 0, (arm, record["completion"])
                        pool[operand] -= 1
                    pool[c] += 1
                assert sum(pool.values()) == 1  # every number (and result) consumed


def test_the_answer_line_parses_and_correctness_is_as_intended(arm_records):
    task = tasks.get("countdown")
    for arm, records in arm_records.items():
        for record in records:
            last_line = record["completion"].rstrip().rsplit("\n", 1)[-1]
            assert last_line.startswith("<answer>") and last_line.endswith("</answer>")
            grade = task.grade(record, record["completion"])
            assert grade.reward in (1.0, 0.1)  # always a well-formed answer of the numbers
            assert grade.correct == ct.ARMS[arm].correct == record["answer_correct"], (
                arm, record["completion"])


def test_behaviors_that_are_off_never_appear_and_those_on_always_do(arm_records):
    for arm, records in arm_records.items():
        style = ct.ARMS[arm]
        for record in records:
            counts = behaviors.count(record["completion"], "countdown", target=record["target"])
            for key, on in style.behaviors.items():
                on = on and style.think == "trace"
                assert (counts[key] > 0) == on, (arm, key, counts, record["completion"])


def test_backtracks_counted_equal_the_failed_attempts_written():
    for low, high in ((1, 1), (2, 3)):
        records, _ = synthetic.generate("countdown_traces",
                                        {**OPTIONS, "arm": "backtracking",
                                         "failed_attempts": (low, high)}, 5)
        for record in records:
            written = record["completion"].count(ct.BACKTRACK_PHRASE)
            assert low <= written <= high
            counts = behaviors.count(record["completion"], "countdown", target=record["target"])
            assert counts["backtracking"] == written, record["completion"]


def test_arms_share_problems_and_controls_are_made_from_the_all_trace(arm_records):
    problems = {arm: [(r["target"], tuple(r["nums"])) for r in records]
                for arm, records in arm_records.items()}
    assert len(set(map(tuple, problems.values()))) == 1
    for full, empty, dots in zip(arm_records["all"], arm_records["empty"], arm_records["dots"]):
        answer = full["completion"].rsplit("\n", 1)[-1]
        assert empty["completion"] == " </think>\n" + answer
        assert dots["completion"].endswith(answer)
        words = [len(line.split()) for line in _thought(full["completion"]).split("\n")]
        dot_lines = [len(line.split()) for line in _thought(dots["completion"]).split("\n")]
        assert words == dot_lines and set(_thought(dots["completion"])) <= set(". \n")


def test_seeded_and_different_across_seeds():
    first = synthetic.generate("countdown_traces", {**OPTIONS, "arm": "all"}, 0)[0]
    again = synthetic.generate("countdown_traces", {**OPTIONS, "arm": "all"}, 0)[0]
    other = synthetic.generate("countdown_traces", {**OPTIONS, "arm": "all"}, 1)[0]
    assert first == again
    assert [r["completion"] for r in first] != [r["completion"] for r in other]


def test_base_corpus_has_valid_steps_and_no_behaviors():
    records, held_out = synthetic.generate("countdown_attempts", OPTIONS, 0)
    assert len(records) == NUM and len(held_out) == OPTIONS["num_eval"]
    task = tasks.get("countdown")
    correct = 0
    for record in records:
        (attempt,) = _attempts(_thought(record["completion"]))
        assert len(attempt) == 2 and all(_OPS[op](a, b) == c for a, op, b, c in attempt)
        counts = behaviors.count(record["completion"], "countdown", target=record["target"])
        assert not any(counts.values()), record["completion"]
        correct += task.grade(record, record["completion"]).correct
    assert correct < NUM // 4  # a random attempt rarely solves the problem


def test_an_unknown_arm_is_an_error_naming_the_option():
    with pytest.raises(KeyError, match="generator_options.arm"):
        synthetic.generate("countdown_traces", {**OPTIONS, "arm": "everything"}, 0)


def test_write_trace_of_one_instance_by_hand():
    record = {"nums": [3, 4, 5], "target": 35}
    thought, answer, correct = ct.write_trace(record, ct.ARMS["none"], random.Random(0))
    assert correct and thought == "4 + 3 = 7\n7 * 5 = 35" and answer == "(4 + 3) * 5"
    thought, _, _ = ct.write_trace(record, ct.ARMS["backtracking_backward"], random.Random(0))
    assert thought.endswith("Working backwards: 35 = 7 * 5.\n4 + 3 = 7\n7 * 5 = 35")
