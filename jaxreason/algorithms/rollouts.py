"""Group rollouts for online RL: sample, grade, filter, and turn into training rows.

`RolloutCollector.collect(params, step)` draws `prompts_per_step` prompts, samples
`group_size` completions of each and grades them through `jaxreason.generation` (the text
that earns a reward is cut by the one rule evaluation uses too), keeps the groups dynamic
sampling finds informative and draws again until the batch is full (at most
`max_sampling_rounds`; the shortfall is filled with dropped groups that carry no loss), then
builds rows with `jaxreason.data.rows.completion_rows` and advantages by the configured
estimator. GRPO uses it; PPO and SRL (another reward) are meant to as well. Settings come
from the `grpo` config section.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import jax
import numpy as np

from jaxreason.advantages import get_advantage, informative_groups
from jaxreason.data.rows import completion_rows
from jaxreason.generation import RewardFn, generate, grade
from jaxreason.prompting import PromptFormat, prompt_token_ids, record_prompt
from jaxreason.train.errors import ConfigError


def stop_strings(g: Any) -> tuple[str, ...]:
    """`grpo.stop` ("a|b") as a tuple."""
    return tuple(s for s in (g.stop or "").split("|") if s)


def advantage_name(g: Any) -> str:
    """`grpo.advantage`, with the older `normalize_std = False` meaning Dr. GRPO."""
    return "dr_grpo" if g.advantage == "grpo" and not g.normalize_std else g.advantage


@dataclasses.dataclass
class Rollouts:
    """What sampling and grading produced for one step (this process's share)."""

    rows: dict[str, np.ndarray]
    metrics: dict[str, float]


class RolloutCollector:
    """Samples, grades and filters groups until a step's batch is full."""

    def __init__(self, config: Any, sampler: Any, tokenizer: Any, task: Any,
                 reward_fn: RewardFn | None, prompt_iterator: Any, fmt: PromptFormat) -> None:
        g = config.grpo
        self.g, self.seed = g, int(config.seed)
        self.sampler, self.tokenizer, self.task = sampler, tokenizer, task
        self.reward_fn, self.iterator, self.fmt = reward_fn, prompt_iterator, fmt
        self.prompts_per_step = g.prompts_per_step // jax.process_count()
        self.row_length = g.max_prompt_tokens + g.max_new_tokens
        self.stop = stop_strings(g)
        self.advantages = get_advantage(advantage_name(g))

    def prompt_ids(self, record: dict[str, Any]) -> list[int]:
        ids = prompt_token_ids(record_prompt(record, self.task, self.fmt), self.tokenizer,
                               self.fmt)
        if len(ids) > self.g.max_prompt_tokens:
            raise ConfigError(f"grpo.max_prompt_tokens: a prompt has {len(ids)} tokens, more "
                              f"than {self.g.max_prompt_tokens}")
        return ids

    def collect(self, params: Any, step: int) -> Rollouts:
        g, per_step = self.g, self.prompts_per_step
        sampling_time = grading_time = 0.0
        kept: list[dict[str, Any]] = []
        dropped: list[dict[str, Any]] = []
        first: Any = None
        rounds = 0
        while len(kept) < per_step and rounds < g.max_sampling_rounds:
            records = [next(self.iterator) for _ in range(per_step)]
            prompts = [self.prompt_ids(r) for r in records]
            start = time.perf_counter()  # sample_and_grade, in its two halves to time each
            out = generate(self.sampler, prompts, self.sampling_params(step, rounds),
                           params=params)
            sampling_time += time.perf_counter() - start
            start = time.perf_counter()
            out = grade(out, records, task=self.task, reward_fn=self.reward_fn,
                        num_workers=g.grading_workers, item_timeout_s=g.grading_timeout_s)
            grading_time += time.perf_counter() - start
            rewards = out.by_prompt(out.rewards)
            keep = (informative_groups(rewards, min_std=g.min_group_std)
                    if g.dynamic_sampling else np.ones(per_step, bool))
            first = out if first is None else first
            for p in range(per_step):
                rows = slice(p * g.group_size, (p + 1) * g.group_size)
                group = {"prompt": prompts[p], "tokens": out.tokens[rows],
                         "lengths": out.lengths[rows], "truncated": out.truncated[rows],
                         "raw_logprobs": out.raw_logprobs[rows], "rewards": rewards[p]}
                (kept if keep[p] else dropped).append(group)
            rounds += 1
        filler = max(0, per_step - len(kept))
        groups = kept[:per_step] + dropped[:filler]
        trainable_groups = np.array([True] * min(len(kept), per_step) + [False] * filler)
        return Rollouts(self.to_rows(groups, trainable_groups),
                        self.metrics(first, len(kept), rounds * per_step, rounds, filler,
                                     sampling_time, grading_time))

    def sampling_params(self, step: int, round_index: int) -> Any:
        from jaxreason.sampling import SamplingParams

        g = self.g
        seed = (self.seed * 1_000_003 + step * 1_009 + round_index * 7 +
                jax.process_index() * 104_729) % (2 ** 31)
        return SamplingParams(temperature=g.temperature, top_p=g.top_p, top_k=g.top_k,
                              n=g.group_size, max_new_tokens=g.max_new_tokens, seed=seed,
                              stop=self.stop)

    def to_rows(self, groups: list[dict[str, Any]], trainable_groups: np.ndarray
                ) -> dict[str, np.ndarray]:
        """Rows of the step (with each completion's `rewards [rows]` beside the advantages);
        filler groups (and, with `mask_truncated`, completions cut off by the budget: no final
        answer) keep their tokens but carry no loss."""
        g = self.g
        advantages = self.advantages(np.stack([grp["rewards"] for grp in groups]))
        advantages[~trainable_groups] = 0.0
        trainable = np.repeat(trainable_groups, g.group_size)
        if g.mask_truncated:
            trainable &= ~np.concatenate([grp["truncated"] for grp in groups])
        rows = completion_rows(
            [grp["prompt"] for grp in groups],
            np.concatenate([grp["tokens"] for grp in groups]),
            np.concatenate([grp["lengths"] for grp in groups]),
            np.repeat(np.arange(len(groups)), g.group_size),
            advantages.reshape(-1), length=self.row_length,
            pad_token_id=self.sampler.pad_token_id, trainable=trainable,
            sampler_logprobs=np.concatenate([grp["raw_logprobs"] for grp in groups]))
        # each completion's own reward `[rows]` (PPO places it on the last token)
        rows["rewards"] = np.concatenate([grp["rewards"] for grp in groups]).astype(np.float32)
        return rows

    def metrics(self, first: Any, kept: int, sampled_groups: int, rounds: int, filler: int,
                sampling_time: float, grading_time: float) -> dict[str, float]:
        """Reward / accuracy / length statistics of the first sampling round (an unbiased
        sample of the policy on fresh prompts), plus what dynamic sampling did."""
        out = {
            "reward_mean": float(first.rewards.mean()), "reward_std": float(first.rewards.std()),
            "response_length_mean": float(first.lengths.mean()),
            "response_length_max": float(first.lengths.max()),
            "truncated_fraction": float(first.truncated.mean()),
            "groups_filtered_fraction": 1.0 - kept / max(sampled_groups, 1),
            "sampling_rounds": float(rounds), "filler_groups": float(filler),
            "sample_time": sampling_time, "grade_time": grading_time,
        }
        if first.correct is not None:
            out["accuracy"] = float(first.correct.mean())
        if first.grades is not None:  # task grades: format rate, reward of well-formed ones
            ok = np.array([bool(grade.format_ok) for grade in first.grades])
            out["format_ok_fraction"] = float(ok.mean())
            out["reward_mean_format_ok"] = float(first.rewards[ok].mean()) if ok.any() else 0.0
        return out
