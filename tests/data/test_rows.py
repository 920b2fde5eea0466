"""Sampled completions become training rows (`data.rows.completion_rows`): prompt +
completion, loss only on completion tokens."""

import numpy as np
import pytest

from jaxreason.data.rows import completion_rows


def test_rows_hold_prompt_and_completion_with_loss_on_the_completion():
    prompts = [[1, 10, 11], [1, 20]]
    completions = np.array([[30, 31, 2, 0], [40, 0, 0, 0], [50, 51, 52, 53]])
    lengths = np.array([3, 1, 4])
    rows = completion_rows(prompts, completions, lengths, np.array([0, 1, 1]),
                        np.array([0.5, -1.0, 2.0]), length=8, pad_token_id=0,
                        trainable=np.array([True, True, False]),
                        sampler_logprobs=np.array([[-1, -2, -3, 0], [-4, 0, 0, 0],
                                                   [-5, -6, -7, -8]], np.float32))
    np.testing.assert_array_equal(rows["input_ids"][0], [1, 10, 11, 30, 31, 0, 0, 0])
    np.testing.assert_array_equal(rows["targets"][0], [10, 11, 30, 31, 2, 0, 0, 0])
    np.testing.assert_array_equal(rows["loss_mask"][0], [0, 0, 1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(rows["segment_ids"][0], [1, 1, 1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(rows["positions"][0], [0, 1, 2, 3, 4, 0, 0, 0])
    np.testing.assert_array_equal(rows["sampler_logprobs"][0], [0, 0, -1, -2, -3, 0, 0, 0])
    np.testing.assert_array_equal(rows["input_ids"][1], [1, 20, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(rows["loss_mask"][1], [0, 1, 0, 0, 0, 0, 0, 0])
    assert rows["loss_mask"][2].sum() == 0  # not trainable: tokens kept, no loss
    np.testing.assert_array_equal(rows["input_ids"][2], [1, 20, 50, 51, 52, 0, 0, 0])
    np.testing.assert_array_equal(rows["advantages"], np.float32([0.5, -1.0, 2.0]))


def test_rows_that_do_not_fit_are_an_error():
    with pytest.raises(ValueError, match="exceed the row length 4"):
        completion_rows([[1, 2, 3]], np.array([[4, 5, 6]]), np.array([3]), np.array([0]),
                     np.array([1.0]), length=4, pad_token_id=0)
