"""Sample, decode once, grade: the functions every consumer of samples calls.

- `generate`: n completions of each token-id prompt -> `Generations` (texts decoded by the one
  rule in `jaxreason.sampling.completion_text`).
- `grade`: rewards of a `Generations` from the task (worker pool, time limits) or from a
  custom reward function `(records, texts) -> floats`.
- `sample_and_grade`: both (GRPO rollouts, evaluation, RPO / rejection-sampling data).
- `continue_steps`: k continuations of each of many prefixes up to a step delimiter (stop
  strings) or the end: the primitive of MCTS expansion and rollouts and of step beam search.
  A prefix is prefilled once for its k continuations.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import numpy as np

from jaxreason.generation.records import Generations
from jaxreason.sampling.params import SamplingParams
from jaxreason.sampling.sampler import completion_text

RewardFn = Callable[[Sequence[Any], Sequence[str]], Sequence[float]]


def generate(sampler: Any, prompts: Sequence[Sequence[int]], sampling: SamplingParams, *,
             params: Any = None) -> Generations:
    """`sampling.n` completions of each token-id prompt, from `params` (default: the
    sampler's own)."""
    prompts = [list(map(int, p)) for p in prompts]
    batch = sampler.generate_ids(prompts, sampling, params=params)
    texts = [completion_text(sampler.tokenizer, batch.tokens[r, : int(batch.lengths[r])],
                             int(batch.finish_codes[r]), int(batch.stop_index[r]), sampling)
             for r in range(batch.tokens.shape[0])]
    return Generations(
        prompt_token_ids=prompts, prompt_index=batch.prompt_index,
        sample_index=batch.sample_index, tokens=batch.tokens, logprobs=batch.logprobs,
        raw_logprobs=batch.raw_logprobs, lengths=batch.lengths,
        finish_codes=batch.finish_codes, stop_index=batch.stop_index, texts=texts)


def grade(generations: Generations, records: Sequence[Any], *, task: Any = None,
          reward_fn: RewardFn | None = None, num_workers: int | None = None,
          item_timeout_s: float = 10.0, total_timeout_s: float | None = None) -> Generations:
    """`generations` with records, grades, rewards and correctness filled in.

    records: one per prompt. With `reward_fn` the rewards are its values and `correct` /
    `grades` stay None; otherwise `task` grades every row's text in worker processes."""
    records = list(records)
    if len(records) != generations.num_prompts:
        raise ValueError(f"grade got {len(records)} records for {generations.num_prompts} "
                         f"prompts")
    row_records = [records[int(p)] for p in generations.prompt_index]
    if reward_fn is not None:
        rewards = np.asarray(reward_fn(row_records, generations.texts), np.float64)
        if rewards.shape != (generations.num_rows,):
            raise ValueError(f"reward function returned {rewards.shape} values for "
                             f"{generations.num_rows} completions")
        return dataclasses.replace(generations, records=records, rewards=rewards)
    if task is None:
        raise ValueError("grade needs a task or a reward function")
    from jaxreason.tasks import grade_batch

    grades = grade_batch(task, row_records, generations.texts, num_workers=num_workers,
                         item_timeout_s=item_timeout_s, total_timeout_s=total_timeout_s)
    return dataclasses.replace(
        generations, records=records, grades=grades,
        rewards=np.array([g.reward for g in grades], np.float64),
        correct=np.array([bool(g.correct) for g in grades], bool))


def sample_and_grade(sampler: Any, prompts: Sequence[Sequence[int]], records: Sequence[Any],
                     sampling: SamplingParams, *, task: Any = None,
                     reward_fn: RewardFn | None = None, params: Any = None,
                     num_workers: int | None = None, item_timeout_s: float = 10.0,
                     total_timeout_s: float | None = None) -> Generations:
    """`generate` then `grade`: `sampling.n` graded completions of each prompt (records[i]
    is the task record of prompts[i])."""
    if len(prompts) != len(records):
        raise ValueError(f"sample_and_grade got {len(prompts)} prompts and {len(records)} "
                         f"records")
    generations = generate(sampler, prompts, sampling, params=params)
    return grade(generations, records, task=task, reward_fn=reward_fn, num_workers=num_workers,
                 item_timeout_s=item_timeout_s, total_timeout_s=total_timeout_s)


def continue_steps(sampler: Any, prefixes: Sequence[Sequence[int]], sampling: SamplingParams,
                   *, params: Any = None) -> Generations:
    """`sampling.n` continuations of each prefix (token ids: the prompt and the steps so far),
    each ending at the first of `sampling.stop` (the step delimiters), at EOS, or at
    `max_new_tokens`. Row r continues prefix `prompt_index[r]`; `finish_codes` tell a finished
    step (stop string) from a finished solution (EOS) and a cut one (length).

    Rows of one prefix share one prefill; a row's sample depends only on (seed, prefix index,
    sample index), so a search that re-asks the same set of prefixes gets the same steps."""
    if not sampling.stop:
        raise ValueError("continue_steps needs SamplingParams.stop: the step delimiter(s)")
    return generate(sampler, prefixes, sampling, params=params)
