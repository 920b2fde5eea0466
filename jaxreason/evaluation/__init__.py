"""Measuring reasoning: estimators over sampled completions (pass@k, maj@k, bootstrap
confidence intervals). Pure NumPy; the sampling itself goes through `jaxreason.generation`."""

from jaxreason.evaluation.estimators import (bootstrap_ci, majority_at_k, majority_vote,
                                             pass_at_k, pass_at_k_per_problem)

__all__ = ["bootstrap_ci", "majority_at_k", "majority_vote", "pass_at_k",
           "pass_at_k_per_problem"]
