"""Group advantages and the dynamic-sampling filter."""

import numpy as np
import pytest

from jaxreason.advantages import (get_advantage, group_advantages, informative_groups,
                                  leave_one_out_advantages)


def test_group_advantages_are_zscores_within_each_group():
    rewards = np.array([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 0.0], [0.5, 0.5, 0.5, 0.5]])
    adv = group_advantages(rewards, epsilon=0.0 + 1e-12)
    np.testing.assert_allclose(adv[0], [1, -1, -1, 1], atol=1e-6)
    np.testing.assert_allclose(adv[1], np.array([1, 1, 1, -3]) / np.sqrt(3), atol=1e-6)
    np.testing.assert_array_equal(adv[2], 0)
    np.testing.assert_allclose(adv.mean(axis=1), 0, atol=1e-6)


def test_dr_grpo_advantages_only_subtract_the_mean():
    rewards = np.array([[1.0, -1.0, -1.0, -1.0]])
    np.testing.assert_allclose(group_advantages(rewards, normalize_std=False),
                               [[1.5, -0.5, -0.5, -0.5]])


def test_leave_one_out_baseline():
    np.testing.assert_allclose(leave_one_out_advantages(np.array([[1.0, 0.0, 0.0]])),
                               [[1.0, -0.5, -0.5]])
    assert get_advantage("rloo") is leave_one_out_advantages
    with pytest.raises(KeyError, match="unknown advantage estimator 'ppo'"):
        get_advantage("ppo")


def test_filter_drops_all_equal_groups_or_low_std_groups():
    rewards = np.array([[1, 1, 1, 1], [0, 0, 0, 1], [0.2, 0.25, 0.2, 0.25], [-1, -1, -1, -1]],
                       np.float64)
    np.testing.assert_array_equal(informative_groups(rewards), [False, True, True, False])
    np.testing.assert_array_equal(informative_groups(rewards, min_std=0.05), [False, True, False, False])


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match=r"\[groups, group_size\]"):
        group_advantages(np.zeros(4))
