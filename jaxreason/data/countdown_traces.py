"""Countdown reasoning traces with controllable behaviors: the priming data of the
cognitive-behaviors study (Gandhi et al. 2025), written by a program instead of Claude.

The paper primes a base model by SFT on small sets of Countdown traces that show chosen
reasoning behaviors, then runs RL. Its traces came from Claude under system prompts that allow
or forbid each behavior; here `write_trace` makes a search-like trace for one instance and a
`TraceStyle` switches each behavior on or off:

- verification: each attempt's result is checked against its goal ("61 is not 59",
  "24, which is the target");
- backtracking: failed attempts come before the solution, each abandoned with "This doesn't
  work, let's try a different combination." (with backtracking off the trace never gives up a
  line, so it makes no failed attempt);
- subgoal setting: before an attempt, the intermediate value it must reach ("We need to get
  12 from 3 and 4.", "First, reach a factor of 60.");
- backward chaining: an attempt starts from the target ("60 = 5 * 12, so ...").

A behavior that is off never appears (the `jaxreason.behaviors` classifier counts 0 of it;
tests/behaviors/test_trace_writer.py checks this). Attempts are legal "school" arithmetic (non-
negative integer results, exact division, each given number used exactly once per attempt),
so every arithmetic line is true; the answer is the last attempt's expression on the last line.

`ARMS` are the paper's priming conditions. Controls derived from the all-behavior trace of the
same instance: `empty` (the thought removed: `<think> </think>`), `dots` (the thought replaced
by one " ." per word, line by line: length-matched in words, about one token each) and `incorrect` (all behaviors, but
every attempt fails and the final answer is wrong). `none` writes the solution's steps only.

Registered data generators (`jaxreason.data.synthetic`):
- `countdown_traces`: priming records `{nums, target, prompt, completion, arm,
  answer_correct}` of `generator_options.arm`; the held-out split is plain instances;
- `countdown_attempts`: the "base model" corpus: one random legal attempt per instance and
  its (almost always wrong) answer, no behaviors: arithmetic and the answer format, no search.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from typing import Any, Mapping, Sequence

Record = dict[str, Any]
# One combination: (left operand, operator, right operand, result), all non-negative ints.
Step = tuple[int, str, int, int]

BACKTRACK_PHRASE = "This doesn't work, let's try a different combination."
MAX_NUMBERS = 4  # attempts are enumerated exhaustively (about 2,300 sequences for 4 numbers)


@dataclasses.dataclass(frozen=True)
class Attempt:
    """A legal sequence of steps using every given number once; `expression` reaches `value`."""

    steps: tuple[Step, ...]
    expression: str

    @property
    def value(self) -> int:
        return self.steps[-1][3]


@dataclasses.dataclass(frozen=True)
class TraceStyle:
    """What a trace shows. failed_attempts: (min, max) attempts abandoned before the last one
    (only with backtracking: without it the trace has one attempt); think: "trace" | "empty" |
    "dots"; correct: the final answer reaches the target (False: every attempt fails)."""

    verification: bool = False
    backtracking: bool = False
    subgoals: bool = False
    backward: bool = False
    failed_attempts: tuple[int, int] = (1, 2)
    think: str = "trace"
    correct: bool = True

    @property
    def behaviors(self) -> dict[str, bool]:
        """Which classifier keys this style may show (`jaxreason.behaviors.KEYS`)."""
        return {"verification": self.verification, "backtracking": self.backtracking,
                "subgoal_setting": self.subgoals, "backward_chaining": self.backward}


_ALL = TraceStyle(verification=True, backtracking=True, subgoals=True, backward=True)
ARMS: dict[str, TraceStyle] = {
    "all": _ALL,
    "backtracking": TraceStyle(backtracking=True),
    "backtracking_verification": TraceStyle(backtracking=True, verification=True),
    "backtracking_subgoal": TraceStyle(backtracking=True, subgoals=True),
    "backtracking_backward": TraceStyle(backtracking=True, backward=True),
    "none": TraceStyle(),  # the solution's steps, then the answer
    "empty": dataclasses.replace(_ALL, think="empty"),
    "dots": dataclasses.replace(_ALL, think="dots"),
    "incorrect": dataclasses.replace(_ALL, correct=False),
}


# ----------------------------------------------------------------------------- attempts

def _combinations(a: int, b: int) -> list[tuple[int, int, str, int]]:
    """(result, left, op, right) with non-negative integer results and exact division."""
    big, small = (a, b) if a >= b else (b, a)
    out = [(a + b, big, "+", small), (a * b, big, "*", small), (big - small, big, "-", small)]
    if small and big % small == 0 and small != 1:
        out.append((big // small, big, "/", small))
    return out


def all_attempts(nums: Sequence[int]) -> list[Attempt]:
    """Every legal step sequence that combines all of `nums` into one value (2-4 numbers)."""
    if not 2 <= len(nums) <= MAX_NUMBERS:
        raise ValueError(f"countdown traces need 2 to {MAX_NUMBERS} numbers, got {list(nums)}")
    out: list[Attempt] = []

    def grow(items: list[tuple[int, str]], steps: tuple[Step, ...]) -> None:
        if len(items) == 1:
            expression = items[0][1]
            if expression.startswith("(") and expression.endswith(")"):
                expression = expression[1:-1]
            out.append(Attempt(steps, expression))
            return
        for i, j in itertools.combinations(range(len(items)), 2):
            (a, ea), (b, eb) = items[i], items[j]
            rest = [x for k, x in enumerate(items) if k not in (i, j)]
            for result, left, op, right in _combinations(a, b):
                el, er = (ea, eb) if (left, right) == (a, b) else (eb, ea)
                grow(rest + [(result, f"({el} {op} {er})")], steps + ((left, op, right, result),))

    grow([(int(n), str(int(n))) for n in nums], ())
    return out


def _clean(attempt: Attempt, target: int) -> bool:
    """No step uses the target as an operand and none but the last reaches it: an attempt that
    passes through the target would read as a found solution, or as backward chaining."""
    return all(step[0] != target and step[2] != target for step in attempt.steps) and all(
        step[3] != target for step in attempt.steps[:-1])


def usable(record: Mapping[str, Any]) -> bool:
    """Whether the instance has a clean solution and a clean wrong attempt (see `_clean`)."""
    target = int(record["target"])
    values = {a.value for a in all_attempts([int(n) for n in record["nums"]]) if _clean(a, target)}
    return target in values and len(values) > 1


def _line(step: Step) -> str:
    return f"{step[0]} {step[1]} {step[2]} = {step[3]}"


def _goal_of(target: int, nums: Sequence[int], rng: random.Random) -> tuple[str, int, int] | None:
    """A backward decomposition of the target through one given number z: (op, z, g) with
    `target = g op z`, g a positive integer other than the target."""
    options = []
    for z in sorted(set(int(n) for n in nums)):
        if target - z > 0:
            options.append(("+", z, target - z))
        if z > 1 and target % z == 0:
            options.append(("*", z, target // z))
        options.append(("-", z, target + z))
    options = [o for o in options if o[2] != target]
    return rng.choice(options) if options else None


# ----------------------------------------------------------------------------- the writer

def _attempt_text(attempt: Attempt, target: int, nums: Sequence[int], style: TraceStyle,
                  succeeds: bool, rng: random.Random) -> list[str]:
    """The lines of one attempt: plan (backward / subgoal), steps, check, give-up phrase."""
    lines: list[str] = []
    goal: int | None = None  # the intermediate value the attempt aims at
    last = attempt.steps[-1]
    derived = {s[3] for s in attempt.steps[:-1]}
    if succeeds and len(attempt.steps) > 1:
        # The final step's computed operand is the natural subgoal: target = goal op other.
        left, op, right, _ = last
        goal, other = (left, right) if left in derived else (right, left)
        plan = f"{target} = {left} {op} {right}"
        used = [str(n) for n in nums if n != other] if list(nums).count(other) == 1 else None
    else:
        found = _goal_of(target, nums, rng)
        plan, used = None, None
        if found is not None:
            op, z, goal = found
            plan = f"{target} = {goal} {op} {z}"
            rest = list(nums)
            rest.remove(z)
            used = [str(n) for n in rest]
    source = f" from {' and '.join(used)}" if used else ""
    if style.backward and plan is not None and goal is not None:
        if style.subgoals:
            lines.append(f"{plan}, so we need {goal}{source}.")
        else:
            lines.append(f"Working backwards: {plan}.")
    elif style.subgoals and goal is not None:
        lines.append(f"We need to get {goal}{source}.")
    elif style.subgoals:
        lines.append(f"First, reach a factor of {target}.")
    for k, step in enumerate(attempt.steps):
        text = _line(step)
        is_last = k == len(attempt.steps) - 1
        if style.verification and not is_last and goal is not None and step[3] == goal and (
                style.subgoals or style.backward):
            text += ", which is the number we need."
        if style.verification and is_last:
            text += ", which is the target." if step[3] == target else f". {step[3]} is not {target}."
        lines.append(text)
    if not succeeds and style.backtracking:
        lines.append(BACKTRACK_PHRASE)
    return lines


def write_trace(record: Mapping[str, Any], style: TraceStyle, rng: random.Random
                ) -> tuple[str, str, bool]:
    """(thought, answer expression, whether the answer reaches the target) for one instance.

    The thought is the text between `<think>` and `</think>` (no tags). Raises ValueError if
    the style asks for something the instance cannot give (no correct attempt)."""
    nums, target = [int(n) for n in record["nums"]], int(record["target"])
    attempts = [a for a in all_attempts(nums) if _clean(a, target)]
    right = [a for a in attempts if a.value == target]
    wrong = [a for a in attempts if a.value != target]
    if style.correct and not right:
        raise ValueError(f"no legal solution for nums={nums} target={target}")
    if not style.correct and not wrong:
        raise ValueError(f"no wrong attempt for nums={nums} target={target}")
    low, high = style.failed_attempts
    failures = rng.randint(low, high) if style.backtracking else 0
    chosen = [rng.choice(wrong) for _ in range(failures)]
    final = rng.choice(right) if style.correct else rng.choice(wrong)
    lines: list[str] = []
    for attempt in chosen:
        lines += _attempt_text(attempt, target, nums, style, False, rng)
    lines += _attempt_text(final, target, nums,
                           dataclasses.replace(style, backtracking=False), style.correct, rng)
    return "\n".join(lines), final.expression, final.value == target


def completion(thought: str, answer: str, think: str = "trace") -> str:
    """The completion after the TinyZero prompt (which ends in `<think>`): the thought (as
    written, empty, or dots), `</think>` and the answer on the last line."""
    if think == "empty":
        body = " "
    elif think == "dots":
        body = "\n" + "\n".join(" ".join("." * len(line.split())) for line in
                                 thought.split("\n")) + "\n"
    elif think == "trace":
        body = "\n" + thought + "\n"
    else:
        raise ValueError(f"think must be trace | empty | dots, got {think!r}")
    return f"{body}</think>\n<answer> {answer} </answer>"


# ----------------------------------------------------------------------------- generators

def _split(options: Mapping[str, Any], seed: int) -> tuple[list[Record], list[Record]]:
    """The `countdown` generator's instances (same options, same seed), keeping the first
    `num_train` usable ones (an instance whose numbers include the target is not)."""
    from jaxreason.data.synthetic import countdown_split

    num_train = int(options["num_train"])
    train, held_out = countdown_split({**options, "num_train": num_train * 3 // 2 + 16}, seed)
    train = [r for r in train if usable(r)][:num_train]
    if len(train) < num_train:
        raise RuntimeError(f"countdown traces: only {len(train)} of {num_train} instances have "
                           f"a clean solution; widen number_range / target_range")
    return train, held_out


def _prompt(record: Record, chat: bool) -> Any:
    from jaxreason import tasks

    return tasks.get("countdown").prompt(record, chat=chat)


def traces_split(options: Mapping[str, Any], seed: int) -> tuple[list[Record], list[Record]]:
    """Priming records of arm `options["arm"]` (see `ARMS`) on the `countdown` generator's
    instances (same options and seed: every arm gets the same problems), and its held-out
    instances. Options besides the instance shape: arm, failed_attempts (min, max), chat."""
    arm = options.get("arm")
    if arm not in ARMS:
        raise KeyError(f"generator_options.arm: {arm!r} is not one of {sorted(ARMS)}")
    style = ARMS[arm]
    if "failed_attempts" in options:
        style = dataclasses.replace(style, failed_attempts=tuple(options["failed_attempts"]))
    source = ARMS["all"] if style.think != "trace" else style
    source = dataclasses.replace(source, failed_attempts=style.failed_attempts)
    train, held_out = _split(options, seed)
    chat = bool(options.get("chat", False))
    out = []
    for index, record in enumerate(train):
        rng = random.Random(f"{seed}:{index}")  # the same instance draws the same in every arm
        thought, answer, correct = write_trace(record, source, rng)
        out.append({"nums": list(record["nums"]), "target": record["target"],
                    "prompt": _prompt(record, chat), "arm": arm, "answer_correct": correct,
                    "completion": completion(thought, answer, style.think)})
    return out, held_out


def attempts_split(options: Mapping[str, Any], seed: int) -> tuple[list[Record], list[Record]]:
    """Base-model corpus: per instance one uniformly random legal attempt (its steps as the
    thought) and its expression as the answer; no behaviors."""
    train, held_out = _split(options, seed)
    chat = bool(options.get("chat", False))
    out = []
    for index, record in enumerate(train):
        rng = random.Random(f"attempts:{seed}:{index}")
        attempt = rng.choice(all_attempts([int(n) for n in record["nums"]]))
        thought = "\n".join(_line(s) for s in attempt.steps)
        out.append({"nums": list(record["nums"]), "target": record["target"],
                    "prompt": _prompt(record, chat),
                    "answer_correct": attempt.value == int(record["target"]),
                    "completion": completion(thought, attempt.expression)})
    return out, held_out
