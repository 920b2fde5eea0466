"""The one road from the sampler to every consumer: GRPO, evaluation, search, preference data.

`Generations` is the typed record of a batch of sampled completions (tokens, text decoded once
by one rule, log-probs, finish reasons, and after grading the grades and rewards).
`sample_and_grade` samples n completions per prompt and grades them through the task's
worker pool; `continue_steps` samples k continuations of many token prefixes up to a step
delimiter (MCTS expansion and rollouts, step beam search).
"""

from jaxreason.generation.records import Generations
from jaxreason.generation.sample import (RewardFn, continue_steps, generate, grade,
                                         sample_and_grade)

__all__ = ["Generations", "RewardFn", "continue_steps", "generate", "grade", "sample_and_grade"]
