"""Countdown solver and instance generator (exact `Fraction` arithmetic, never `eval`).

The solver searches over all ways to combine two remaining numbers with + - * / until one
number is left, so it is complete: if any expression using every number exactly once equals
the target, it finds one. It first tries "school" arithmetic (non-negative integer
intermediates, exact division: the rule of the cognitive-behaviors generator, and the nicest
steps to show), then, unless `integer_only`, any rational intermediates (e.g.
`6 / (1 - 3 / 4) = 24`). The search works on bare values (ints in the first phase) and
memoizes failed multisets; strings are built only for the solution found. The 8,001 TinyZero
instances (3-4 numbers) take about 1 s in all; a solvable 6-number instance milliseconds; an
unsolvable 6-number instance can take ~15 s of exhaustive rational search (`max_nodes` caps it).

It returns step lines (`44 + 19 = 63`) for SFT warm-up and SRL expert steps, and an
expression for the `<answer>` tag. The generator draws instances the way the cognitive-behaviors
repository does (uniform numbers and target, kept only if the solver finds a solution), with a
seed.
"""

from __future__ import annotations

import dataclasses
import random
from fractions import Fraction
from typing import Collection, Sequence


@dataclasses.dataclass(frozen=True)
class Solution:
    """A solution: `expression` for `<answer>` and the `steps`, one `a op b = c` per line."""

    expression: str
    steps: tuple[str, ...]

    @property
    def steps_text(self) -> str:
        return "\n".join(self.steps)


Number = int | Fraction
# One combination: (left operand, operator, right operand, result).
Step = tuple[Number, str, Number, Number]


class _BudgetExhausted(Exception):
    pass


def _format(value: Number) -> str:
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    return f"{value.numerator}/{value.denominator}"


def _operand(value: Number) -> str:
    """A step operand; fractions and negatives in parentheses ("6 / (1/4) = 24")."""
    text = _format(value)
    return text if Fraction(value).denominator == 1 and value >= 0 else f"({text})"


def _school_combinations(a: int, b: int) -> list[tuple[int, int, str, int]]:
    """(result, left, op, right) with non-negative integer results and exact division."""
    larger, smaller = (a, b) if a >= b else (b, a)
    results = [(a + b, a, "+", b), (a * b, a, "*", b), (larger - smaller, larger, "-", smaller)]
    if smaller and larger % smaller == 0:
        results.append((larger // smaller, larger, "/", smaller))
    if larger and smaller and smaller != larger and smaller % larger == 0:
        results.append((smaller // larger, smaller, "/", larger))
    return results


def _rational_combinations(a: Fraction, b: Fraction) -> list[tuple[Fraction, Fraction, str, Fraction]]:
    results = [(a + b, a, "+", b), (a * b, a, "*", b), (a - b, a, "-", b), (b - a, b, "-", a)]
    if b:
        results.append((a / b, a, "/", b))
    if a:
        results.append((b / a, b, "/", a))
    return results


class _Search:
    """Depth-first search over pairwise combinations of values (no strings until the end)."""

    def __init__(self, target: Number, integer_only: bool, max_nodes: int | None) -> None:
        self.target = target
        self.combine = _school_combinations if integer_only else _rational_combinations
        self.max_nodes = max_nodes
        self.nodes = 0
        self.failed: set[tuple[Number, ...]] = set()

    def run(self, values: tuple[Number, ...]) -> list[Step] | None:
        target = self.target
        if len(values) == 2:
            for result, left, op, right in self.combine(values[0], values[1]):
                if result == target:
                    return [(left, op, right, result)]
            return None
        key = tuple(sorted(values))
        if key in self.failed:
            return None
        self.nodes += 1
        if self.max_nodes is not None and self.nodes > self.max_nodes:
            raise _BudgetExhausted
        seen_pairs = set()
        count = len(values)
        for i in range(count):
            for j in range(i + 1, count):
                pair = (values[i], values[j]) if values[i] <= values[j] else (values[j], values[i])
                if pair in seen_pairs:
                    continue
                seen_pairs.add(pair)
                rest = tuple(values[k] for k in range(count) if k != i and k != j)
                for result, left, op, right in self.combine(values[i], values[j]):
                    found = self.run(rest + (result,))
                    if found is not None:
                        return [(left, op, right, result)] + found
        self.failed.add(key)
        return None


def _render(nums: Sequence[int], steps: list[Step]) -> Solution:
    """Replays the steps on the numbers to build step lines and the `<answer>` expression."""
    # Each item: (value, expression text, is a single number).
    items: list[tuple[Number, str, bool]] = [(n, str(n), True) for n in nums]

    def take(value: Number) -> tuple[Number, str, bool]:
        # Prefer a derived item: the step just computed is the one the next step uses.
        index = max((k for k, item in enumerate(items) if item[0] == value), key=lambda k: (not items[k][2], k))
        return items.pop(index)

    lines = []
    for left_value, op, right_value, result in steps:
        left, right = take(left_value), take(right_value)
        if op in "+*" and left[2] and not right[2]:  # derived number first: "63 + 35 = 98"
            left, right = right, left
        lines.append(f"{_operand(left[0])} {op} {_operand(right[0])} = {_format(result)}")
        wrap = lambda item: item[1] if item[2] else f"({item[1]})"  # noqa: E731
        items.append((result, f"{wrap(left)} {op} {wrap(right)}", False))
    return Solution(expression=items[0][1], steps=tuple(lines))


def solve(
    nums: Sequence[int],
    target: int,
    *,
    integer_only: bool = False,
    max_nodes: int | None = None,
) -> Solution | None:
    """A solution using every number exactly once, or None if there is none.

    integer_only: only non-negative integer intermediates (subtract the smaller from the
      larger, divide only when exact), as in the cognitive-behaviors generator.
    max_nodes: give up (return None) after this many search states; None searches fully.
    """
    nums = [int(n) for n in nums]
    target = int(target)
    if not nums:
        return None
    if len(nums) == 1:
        return Solution(str(nums[0]), ()) if nums[0] == target else None
    phases: list[tuple[bool, tuple[Number, ...]]] = [(True, tuple(nums))]
    if not integer_only:
        phases.append((False, tuple(Fraction(n) for n in nums)))
    for only_integers, values in phases:
        search = _Search(target if only_integers else Fraction(target), only_integers, max_nodes)
        try:
            steps = search.run(values)
        except _BudgetExhausted:
            return None
        if steps is not None:
            return _render(nums, steps)
    return None


def generate_instances(
    n: int,
    seed: int,
    *,
    num_numbers: tuple[int, int] = (3, 6),
    number_range: tuple[int, int] = (1, 99),
    target_range: tuple[int, int] = (10, 100),
    integer_only: bool = True,
    exclude: Collection[Sequence[int]] = (),
    max_nodes: int = 200_000,
) -> list[dict[str, object]]:
    """`n` solvable Countdown instances `{"target": int, "nums": list[int]}`, deterministic in `seed`.

    num_numbers, number_range, target_range: inclusive ranges; the count of numbers, each
      number and the target are drawn uniformly from them.
    integer_only: require a solution with non-negative integer intermediates (the
      cognitive-behaviors rule); otherwise any rational solution counts.
    exclude: number multisets that must not appear (e.g. a benchmark's instances).
    max_nodes: search budget per candidate; a candidate whose search runs out is dropped.
    """
    low, high = num_numbers
    if not 1 <= low <= high:
        raise ValueError(f"num_numbers must be an increasing range of positive counts, got {num_numbers}")
    excluded = {tuple(sorted(int(x) for x in numbers)) for numbers in exclude}
    rng = random.Random(seed)
    instances: list[dict[str, object]] = []
    for _ in range(n):
        # The count is drawn first and kept, so that it stays uniform (rejection over all
        # counts would favour 5-6 numbers, which are almost always solvable).
        count = rng.randint(low, high)
        for _attempt in range(10_000):
            nums = [rng.randint(*number_range) for _ in range(count)]
            target = rng.randint(*target_range)
            if tuple(sorted(nums)) in excluded:
                continue
            if solve(nums, target, integer_only=integer_only, max_nodes=max_nodes) is not None:
                instances.append({"target": target, "nums": nums})
                break
        else:
            raise RuntimeError(
                f"found no solvable instance with {count} numbers in 10000 draws; check "
                f"number_range={number_range} and target_range={target_range}"
            )
    return instances
