"""Measuring reasoning: estimators over sampled completions (pass@k, maj@k, bootstrap
confidence intervals) and test-time scaling (best-of-N, self-consistency). Pure NumPy; the sampling itself goes through `jaxreason.generation`."""

from jaxreason.evaluation.estimators import (bootstrap_ci, majority_at_k, majority_vote,
                                             pass_at_k, pass_at_k_per_problem)

from jaxreason.evaluation.test_time import (best_of_n, extracted_answer, mean_logprob, oracle,
                                            picked_correct, self_consistency,
                                            weighted_best_of_n)

__all__ = ["best_of_n", "extracted_answer", "mean_logprob", "oracle", "picked_correct",
           "self_consistency", "weighted_best_of_n", "bootstrap_ci", "majority_at_k", "majority_vote", "pass_at_k",
           "pass_at_k_per_problem"]
