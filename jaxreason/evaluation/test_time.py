"""Test-time scaling over one batch of samples: best-of-N and self-consistency.

Both read a graded `Generations` with `n` samples per prompt (rows prompt-major) and pick one
sample per prompt; `picked_correct` then says whether the pick is right, so a curve of accuracy
against samples (tokens) per problem is one call per N. Scorers are pluggable: the exact
verifier (oracle best-of-N = pass@N), the policy's own length-normalized log-probability, or
any `(generations) -> [rows]` function (a reward model).
"""

from __future__ import annotations

from typing import Any, Callable, Hashable

import numpy as np

from jaxreason.evaluation.estimators import majority_vote
from jaxreason.generation import Generations

Scorer = Callable[[Generations], np.ndarray]


def mean_logprob(generations: Generations) -> np.ndarray:
    """`[rows]` length-normalized sequence log-probability under the model (raw log-probs):
    the default scorer, and the vote weight of weighted self-consistency (as exp)."""
    lengths = np.maximum(generations.lengths, 1)
    return (generations.raw_logprobs * generations.mask).sum(axis=1) / lengths


def oracle(generations: Generations) -> np.ndarray:
    """`[rows]` 1 for correct samples (needs graded generations): best-of-N = pass@N."""
    if generations.correct is None:
        raise ValueError("the oracle scorer needs graded generations (task grading)")
    return generations.correct.astype(np.float64)


def best_of_n(generations: Generations, scorer: Scorer = mean_logprob, n: int | None = None
              ) -> np.ndarray:
    """`[prompts]` row index of the best-scored sample among each prompt's first `n` (ties:
    the earlier sample)."""
    per_prompt = generations.samples_per_prompt
    n = per_prompt if n is None else n
    if not 1 <= n <= per_prompt:
        raise ValueError(f"n={n} must be in [1, {per_prompt}]")
    scores = generations.by_prompt(np.asarray(scorer(generations), np.float64))[:, :n]
    return np.arange(generations.num_prompts) * per_prompt + np.argmax(scores, axis=1)


def weighted_best_of_n(generations: Generations, answer: Callable[[Any], Hashable | None],
                       scorer: Scorer = mean_logprob, n: int | None = None) -> np.ndarray:
    """`[prompts]` row index of a sample carrying the answer with the largest total score
    among each prompt's first `n` samples (scores summed over samples with the same answer;
    ties: first seen): best-of-N that also rewards agreement. Scores are shifted to be
    positive per prompt (log-prob scorers are negative)."""
    per_prompt = generations.samples_per_prompt
    n = per_prompt if n is None else n
    scores = generations.by_prompt(np.asarray(scorer(generations), np.float64))[:, :n]
    sources = generations.grades if generations.grades is not None else generations.texts
    picks = []
    for p in range(generations.num_prompts):
        rows = range(p * per_prompt, p * per_prompt + n)
        weights = scores[p] - scores[p].min() + 1e-6
        answers = [answer(sources[r]) for r in rows]
        winner = majority_vote(answers, list(weights))
        picks.append(next((r for r, a in zip(rows, answers) if a == winner), rows[0]))
    return np.asarray(picks)


def self_consistency(generations: Generations, answer: Callable[[Any], Hashable | None],
                     n: int | None = None, weighted: bool = False) -> np.ndarray:
    """`[prompts]` row index of a sample carrying each prompt's majority answer among its first
    `n` samples. answer: maps a row's grade (`generations.grades[r]`, or its text when
    ungraded) to a hashable answer (None: none). weighted: votes weigh the sample's
    length-normalized sequence probability."""
    per_prompt = generations.samples_per_prompt
    n = per_prompt if n is None else n
    sources = generations.grades if generations.grades is not None else generations.texts
    weights = np.exp(mean_logprob(generations)) if weighted else None
    picks = []
    for p in range(generations.num_prompts):
        rows = range(p * per_prompt, p * per_prompt + n)
        answers = [answer(sources[r]) for r in rows]
        winner = majority_vote(answers, None if weights is None else [weights[r] for r in rows])
        picks.append(next((r for r, a in zip(rows, answers) if a == winner), rows[0]))
    return np.asarray(picks)


def picked_correct(generations: Generations, rows: np.ndarray) -> np.ndarray:
    """`[prompts]` bool: whether each picked row is correct."""
    if generations.correct is None:
        raise ValueError("picked_correct needs graded generations")
    return generations.correct[np.asarray(rows)]


def extracted_answer(grade: Any) -> Hashable | None:
    """A grade's extracted answer (the vote of self-consistency)."""
    return getattr(grade, "extracted", None)
