"""Countdown solver and instance generator (exact `Fraction` arithmetic, never `eval`).

The solver searches over all ways to combine two remaining numbers with + - * / until one
number is left, so it is complete: if any expression using every number exactly once equals
the target, it finds one. It first tries "school" arithmetic (non-negative integer
intermediates, exact division: the rule of the cognitive-behaviors generator, and the nicest
steps to show), then, unless `integer_only`, any rational intermediates (e.g.
`6 / (1 - 3 / 4) = 24`). Failed multisets are memoized, so 3-4 numbers take microseconds
to milliseconds and 6 numbers at most about a second.

It returns step lines (`44 + 19 = 63`) for SFT warm-up and SRL expert steps, and an
expression for the `<answer>` tag. The generator draws instances the way the cognitive-behaviors
repository does (uniform target, kept only if the solver finds a solution), with a seed.
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


@dataclasses.dataclass(frozen=True)
class _Item:
    value: Fraction
    text: str
    atomic: bool
    steps: tuple[str, ...] = ()


class _BudgetExhausted(Exception):
    pass


def _format(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return f"{value.numerator}/{value.denominator}"


def _operand(value: Fraction) -> str:
    """A step operand; fractions and negatives in parentheses ("6 / (1/4) = 24")."""
    text = _format(value)
    return text if value.denominator == 1 and value >= 0 else f"({text})"


def _wrap(item: _Item) -> str:
    return item.text if item.atomic else f"({item.text})"


def _combinations(a: _Item, b: _Item, integer_only: bool) -> list[tuple[Fraction, _Item, _Item, str]]:
    """(value, left, right, op) for every allowed `left op right` over the pair {a, b}."""
    # Commutative operations read best with the derived number first ("63 + 35 = 98").
    first, second = sorted((a, b), key=lambda item: (item.atomic, -item.value))
    results = [(a.value + b.value, first, second, "+"), (a.value * b.value, first, second, "*")]
    larger, smaller = (a, b) if a.value >= b.value else (b, a)
    results.append((larger.value - smaller.value, larger, smaller, "-"))
    if not integer_only:
        results.append((smaller.value - larger.value, smaller, larger, "-"))
    for left, right in ((a, b), (b, a)):
        if right.value == 0:
            continue
        quotient = left.value / right.value
        if integer_only and quotient.denominator != 1:
            continue
        results.append((quotient, left, right, "/"))
    return results


class _Search:
    def __init__(self, target: Fraction, integer_only: bool, max_nodes: int | None) -> None:
        self.target = target
        self.integer_only = integer_only
        self.max_nodes = max_nodes
        self.nodes = 0
        self.failed: set[tuple[Fraction, ...]] = set()

    def run(self, items: list[_Item]) -> _Item | None:
        if len(items) == 1:
            return items[0] if items[0].value == self.target else None
        key = tuple(sorted(item.value for item in items))
        if key in self.failed:
            return None
        self.nodes += 1
        if self.max_nodes is not None and self.nodes > self.max_nodes:
            raise _BudgetExhausted
        seen_pairs: set[tuple[Fraction, Fraction]] = set()
        for i in range(len(items)):
            for j in range(i + 1, len(items)):
                a, b = items[i], items[j]
                pair = (min(a.value, b.value), max(a.value, b.value))
                if pair in seen_pairs:
                    continue
                seen_pairs.add(pair)
                rest = [items[k] for k in range(len(items)) if k != i and k != j]
                for value, left, right, op in _combinations(a, b, self.integer_only):
                    if not rest and value != self.target:
                        continue
                    step = f"{_operand(left.value)} {op} {_operand(right.value)} = {_format(value)}"
                    combined = _Item(
                        value=value,
                        text=f"{_wrap(left)} {op} {_wrap(right)}",
                        atomic=False,
                        steps=left.steps + right.steps + (step,),
                    )
                    found = self.run(rest + [combined])
                    if found is not None:
                        return found
        self.failed.add(key)
        return None


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
    if not nums:
        return None
    items = [_Item(Fraction(int(n)), str(int(n)), True) for n in nums]
    target_value = Fraction(int(target))
    if len(items) == 1:
        return Solution(items[0].text, ()) if items[0].value == target_value else None
    for only_integers in (True,) if integer_only else (True, False):
        search = _Search(target_value, only_integers, max_nodes)
        try:
            found = search.run(items)
        except _BudgetExhausted:
            return None
        if found is not None:
            return Solution(expression=found.text, steps=found.steps)
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
    attempts = 0
    while len(instances) < n:
        attempts += 1
        if attempts > 1000 * max(n, 1):
            raise RuntimeError(
                f"could not generate {n} solvable instances in {attempts - 1} attempts; "
                f"check the ranges num_numbers={num_numbers} number_range={number_range} "
                f"target_range={target_range}"
            )
        count = rng.randint(low, high)
        nums = [rng.randint(*number_range) for _ in range(count)]
        target = rng.randint(*target_range)
        if tuple(sorted(nums)) in excluded:
            continue
        if solve(nums, target, integer_only=integer_only, max_nodes=max_nodes) is not None:
            instances.append({"target": target, "nums": nums})
    return instances
