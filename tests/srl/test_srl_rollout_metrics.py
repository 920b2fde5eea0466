"""The rollout collector logs, for any task, the share of well-formed completions and the
mean reward of the well-formed ones (SRL: one minus the format-error rate, and the mean
similarity), from the first sampling round's grades."""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "rl"))

import test_rollout_collector as scripted  # noqa: E402

from configs import base  # noqa: E402
from jaxreason.algorithms.rollouts import RolloutCollector  # noqa: E402
from jaxreason.prompting import PromptFormat  # noqa: E402
from jaxreason.tasks.base import Grade  # noqa: E402


class StepTask:
    """Token 1 is an exact step (1.0), token 0 a well-formed near miss (0.25) when the sample
    has two tokens, else a format error (-1)."""

    name = "scripted_srl"

    def prompt(self, record, chat=False):
        return str(record["k"] + 10)

    def grade(self, record, completion):
        tokens = completion.split()
        if tokens[0] == "1":
            return Grade(1.0, True, completion, "exact_match", True)
        if len(tokens) == 2:
            return Grade(0.25, False, completion, "similarity", True)
        return Grade(-1.0, False, None, "format_error", False)


def test_format_rate_and_mean_reward_of_well_formed_completions():
    c = base.get_config()
    c.grpo.update(dict(prompts_per_step=4, group_size=scripted.GROUP, max_prompt_tokens=4,
                       max_new_tokens=scripted.NEW_TOKENS, grading_workers=0,
                       dynamic_sampling=True, min_group_std=0.01, max_sampling_rounds=1))
    records = iter([{"k": k} for k in range(100)])
    collector = RolloutCollector(c, scripted.Sampler(), scripted.Tokenizer(), StepTask(), None,
                                 records, PromptFormat())
    metrics = collector.collect(params=None, step=0).metrics
    rewards, ok = [], []
    for k in range(4):
        for s in range(scripted.GROUP):
            first = scripted.FIRST_TOKENS[k % 4][s]
            truncated = k % 4 in scripted.TRUNCATED and s == scripted.GROUP - 1
            length = scripted.NEW_TOKENS if truncated else 1 + s % 2
            grade = StepTask().grade({}, " ".join(str(t) for t in [first, 5][:length]))
            rewards.append(grade.reward)
            ok.append(grade.format_ok)
    rewards, ok = np.array(rewards), np.array(ok)
    assert metrics["format_ok_fraction"] == pytest.approx(ok.mean())
    assert metrics["reward_mean_format_ok"] == pytest.approx(rewards[ok].mean())
    assert metrics["reward_mean"] == pytest.approx(rewards.mean())
    assert 0 < ok.mean() < 1  # the scripted rollouts have both kinds
