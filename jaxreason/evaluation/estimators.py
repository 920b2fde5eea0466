"""Estimators of how often a model solves a problem, from n samples per problem.

- `pass_at_k(n, c, k)`: the unbiased estimator of the probability that at least one of k
  samples is correct, given c correct among n (Chen et al., "Evaluating Large Language Models
  Trained on Code", 2021): 1 - C(n - c, k) / C(n, k), computed as a product so that large n
  never overflows.
- `majority_vote(answers, weights)`: self-consistency's answer (Wang et al., 2022): the answer
  with the largest (weighted) vote; ties go to the answer seen first, so the result is
  deterministic. `None` answers (nothing extracted) never win while another answer exists.
- `majority_at_k`: maj@k of one problem, the majority over its first k samples.
- `bootstrap_ci`: a percentile bootstrap interval of a mean over problems (resampling
  problems, not samples), seeded.
"""

from __future__ import annotations

from typing import Any, Hashable, Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that a uniformly drawn k-subset of n samples (c correct) holds a correct
    one. Requires 0 <= c <= n and 1 <= k <= n."""
    if not (0 <= c <= n) or not (1 <= k <= n):
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    # C(n - c, k) / C(n, k) = prod_{i = n - c + 1}^{n} (1 - k / i)
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_at_k_per_problem(correct: np.ndarray | Sequence[Sequence[bool]], k: int) -> np.ndarray:
    """pass@k of each problem from a `[problems, n]` boolean array of graded samples."""
    correct = np.asarray(correct, bool)
    if correct.ndim != 2:
        raise ValueError(f"correct must be [problems, samples], got shape {correct.shape}")
    n = correct.shape[1]
    return np.array([pass_at_k(n, int(row.sum()), k) for row in correct])


def majority_vote(answers: Sequence[Hashable | None],
                  weights: Sequence[float] | None = None) -> Hashable | None:
    """The answer with the largest total weight (each vote weighs 1 without `weights`); ties
    go to the first occurrence; None answers only win when there is no other answer."""
    if weights is not None and len(weights) != len(answers):
        raise ValueError(f"{len(answers)} answers but {len(weights)} weights")
    totals: dict[Any, float] = {}
    first: dict[Any, int] = {}
    for i, answer in enumerate(answers):
        if answer is None:
            continue
        totals[answer] = totals.get(answer, 0.0) + (1.0 if weights is None else float(weights[i]))
        first.setdefault(answer, i)
    if not totals:
        return None
    return max(totals, key=lambda a: (totals[a], -first[a]))


def majority_at_k(answers: Sequence[Hashable | None], correct_answer: Hashable, k: int,
                  weights: Sequence[float] | None = None) -> bool:
    """Whether the majority of the first k answers is the correct one (maj@k of a problem)."""
    if not 1 <= k <= len(answers):
        raise ValueError(f"k={k} must be in [1, {len(answers)}]")
    winner = majority_vote(answers[:k], None if weights is None else weights[:k])
    return winner is not None and winner == correct_answer


def bootstrap_ci(values: Sequence[float] | np.ndarray, *, confidence: float = 0.95,
                 num_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-problem `values`."""
    values = np.asarray(values, np.float64)
    if values.size == 0:
        return float("nan"), float("nan")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, (num_resamples, values.size))].mean(axis=1)
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)
