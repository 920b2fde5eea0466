"""pass@k, majority vote and bootstrap intervals against brute force."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from jaxreason.evaluation import (bootstrap_ci, majority_at_k, majority_vote, pass_at_k,
                                  pass_at_k_per_problem)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 9), data=st.data())
def test_pass_at_k_equals_the_share_of_k_subsets_holding_a_correct_sample(n, data):
    c = data.draw(st.integers(0, n))
    k = data.draw(st.integers(1, n))
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    brute = sum(any(samples[i] for i in s) for s in subsets) / len(subsets)
    assert pass_at_k(n, c, k) == pytest.approx(brute, abs=1e-12)


def test_pass_at_k_closed_forms_and_large_n():
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(10, 0, 5) == 0.0 and pass_at_k(10, 6, 5) == 1.0
    exact = 1 - math.comb(1000 - 7, 50) / math.comb(1000, 50)
    assert pass_at_k(1000, 7, 50) == pytest.approx(exact, rel=1e-10)
    np.testing.assert_allclose(pass_at_k_per_problem([[1, 0, 0, 0], [1, 1, 0, 0]], 2),
                               [0.5, 5 / 6])
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)


def test_majority_vote_weights_ties_and_missing_answers():
    assert majority_vote(["3", "4", "4", "3"]) == "3"  # tie: first seen
    assert majority_vote(["3", "4", "4"]) == "4"
    assert majority_vote(["3", "4", "4"], weights=[2.5, 1.0, 1.0]) == "3"
    assert majority_vote([None, None, "7"]) == "7"
    assert majority_vote([None, None]) is None
    assert majority_at_k(["1", "2", "2", "2"], "2", 1) is False
    assert majority_at_k(["1", "2", "2", "2"], "2", 3) is True


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_more_problems():
    rng = np.random.default_rng(0)
    small = rng.random(20) < 0.4
    large = rng.random(2000) < 0.4
    lo, hi = bootstrap_ci(small, seed=1)
    assert lo <= small.mean() <= hi
    lo2, hi2 = bootstrap_ci(large, seed=1)
    assert lo2 <= large.mean() <= hi2 and (hi2 - lo2) < (hi - lo) / 5
    assert bootstrap_ci(small, seed=1) == (lo, hi)  # seeded


def test_pass_at_k_matches_monte_carlo_subsets():
    rng = np.random.default_rng(0)
    n, c, k = 20, 3, 5
    samples = np.array([True] * c + [False] * (n - c))
    draws = [samples[rng.choice(n, k, replace=False)].any() for _ in range(20000)]
    assert pass_at_k(n, c, k) == pytest.approx(np.mean(draws), abs=0.01)


def test_bootstrap_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    covered = 0
    trials = 300
    for t in range(trials):
        values = rng.random(60) < 0.3  # true mean 0.3
        lo, hi = bootstrap_ci(values, num_resamples=500, seed=t)
        covered += lo <= 0.3 <= hi
    assert 0.88 <= covered / trials <= 0.99
