"""Best-of-N and self-consistency over a hand-built batch of graded generations."""

import numpy as np

from jaxreason.evaluation import (best_of_n, extracted_answer, mean_logprob, oracle,
                                  picked_correct, self_consistency)
from jaxreason.generation import Generations
from jaxreason.tasks import Grade


def batch():
    """2 prompts x 4 samples; answers and per-token log-probs chosen by hand."""
    answers = ["5", "7", "7", "5", "9", None, "9", "1"]
    correct = np.array([1, 0, 0, 1, 0, 0, 0, 1], bool)
    lengths = np.array([2, 2, 2, 2, 1, 3, 2, 2])
    raw = np.zeros((8, 3), np.float32)
    per_token = [-1.0, -0.1, -0.2, -2.0, -0.5, -0.05, -0.3, -3.0]
    for r, (lp, n) in enumerate(zip(per_token, lengths)):
        raw[r, :n] = lp
    grades = [Grade(reward=float(c), correct=bool(c), extracted=a, reason="", format_ok=True)
              for a, c in zip(answers, correct)]
    return Generations(
        prompt_token_ids=[[1], [2]], prompt_index=np.repeat([0, 1], 4),
        sample_index=np.tile(np.arange(4), 2), tokens=np.zeros((8, 3), np.int32),
        logprobs=raw.copy(), raw_logprobs=raw, lengths=lengths,
        finish_codes=np.ones(8, np.int32), stop_index=np.full(8, -1), texts=answers_text(answers),
        records=[{}, {}], grades=grades, rewards=correct.astype(float), correct=correct)


def answers_text(answers):
    return [f"answer {a}" for a in answers]


def test_mean_logprob_is_length_normalized():
    np.testing.assert_allclose(mean_logprob(batch()), [-1, -.1, -.2, -2, -.5, -.05, -.3, -3],
                               rtol=1e-6)


def test_best_of_n_by_policy_score_and_by_oracle():
    g = batch()
    np.testing.assert_array_equal(best_of_n(g), [1, 5])  # highest mean log-prob per prompt
    np.testing.assert_array_equal(picked_correct(g, best_of_n(g)), [False, False])
    np.testing.assert_array_equal(best_of_n(g, oracle), [0, 7])  # = pass@4
    np.testing.assert_array_equal(best_of_n(g, oracle, n=2), [0, 4])  # no correct in first 2
    np.testing.assert_array_equal(picked_correct(g, best_of_n(g, oracle, n=2)), [True, False])


def test_self_consistency_plain_and_weighted():
    g = batch()
    plain = self_consistency(g, extracted_answer)
    # prompt 0: 5 and 7 tie at 2 votes -> first seen (5, row 0); prompt 1: 9 wins (None ignored)
    np.testing.assert_array_equal(plain, [0, 4])
    weighted = self_consistency(g, extracted_answer, weighted=True)
    # weights exp(mean logprob): 7 gets e^-.1 + e^-.2 > 5's e^-1 + e^-2
    np.testing.assert_array_equal(weighted, [1, 4])
    np.testing.assert_array_equal(self_consistency(g, extracted_answer, n=1), [0, 4])


def test_weighted_best_of_n_sums_scores_per_answer():
    from jaxreason.evaluation import weighted_best_of_n

    g = batch()
    scores = np.array([5.0, 3.0, 3.0, 0.0, 1.0, 9.0, 2.0, 0.0])
    picks = weighted_best_of_n(g, extracted_answer, scorer=lambda _: scores)
    # prompt 0: "5" = 5 + 0 (shifted: 5, 0) vs "7" = 3 + 3 -> 7 wins; prompt 1: None never
    # votes, "9" = 1 + 2 beats "1" = 0
    np.testing.assert_array_equal(picks, [1, 4])
    np.testing.assert_array_equal(weighted_best_of_n(g, extracted_answer,
                                                     scorer=lambda _: scores, n=1), [0, 4])
