"""The `Task` contract, the `Grade` it returns, reward shaping, and the registry of tasks by name.

A task is a reward function for reinforcement learning and an exact-match judge for evaluation,
so two properties matter more than anything else:

* it must be right (a wrong grader trains the model to optimize the wrong thing), and
* it must be safe on any string a model can write: graders never execute model text, never
  raise into the training loop, and never run unbounded work in the calling process.

`Task.grade` is therefore a template method: it applies the length cap, calls the family's
`_check`, and turns any exception into a defined `Grade` with a reason. Anything that could hang
(symbolic algebra) is delegated by the family to worker processes (see `grading_pool`).

Pure Python: nothing here imports JAX.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, Callable, ClassVar, Mapping

from jaxreason.registry import Registry

Record = Mapping[str, Any]
ChatMessages = list[dict[str, str]]

# Longest extracted answer kept in a `Grade` (keeps logs and inter-process messages small).
MAX_EXTRACTED_CHARS = 512


@dataclasses.dataclass(frozen=True)
class Grade:
    """The verdict on one completion.

    reward: the shaped scalar reward (see `RewardConfig`).
    correct: whether the extracted answer equals the gold answer.
    extracted: the answer found in the completion (cut to `MAX_EXTRACTED_CHARS`), None if none.
    reason: a short machine-readable code, e.g. "exact_match", "numeric_match",
      "symbolic_match", "wrong_answer", "no_answer", "too_long", "timeout", "worker_crashed",
      "grader_error"; some carry a detail after a colon ("invalid_expression: ...").
    format_ok: whether the completion had the expected answer format (the basis of the
      format reward).
    """

    reward: float
    correct: bool
    extracted: str | None
    reason: str
    format_ok: bool = False


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What a family's `_check` decides, before rewards are attached."""

    correct: bool
    extracted: str | None
    reason: str
    format_ok: bool


# Reward presets by name (`tasks.get(name, reward="astro")`, config `grpo.reward`).
REWARD_PRESETS: Registry[dict[str, Any]] = Registry("reward preset")
# 1 for a correct answer, 0 otherwise (RLVR, SRL's second stage, evaluation).
REWARD_PRESETS.register("binary", dict(reward_correct=1.0, reward_incorrect=0.0,
                                       reward_format=None))
# ASTRO's GRPO reward: +1 if the final boxed answer is correct, -1 otherwise.
REWARD_PRESETS.register("astro", dict(reward_correct=1.0, reward_incorrect=-1.0,
                                      reward_format=None))
# TinyZero / cognitive-behaviors Countdown: 1 correct, 0.1 well-formed but wrong, 0 no answer.
REWARD_PRESETS.register("tinyzero", dict(reward_correct=1.0, reward_incorrect=0.0,
                                         reward_format=0.1))


@dataclasses.dataclass(frozen=True)
class RewardConfig:
    """How a verdict maps to a scalar reward; the reward shaping options the papers use.

    reward_correct: reward of a correct answer.
    reward_incorrect: reward of a wrong or missing answer.
    reward_format: if not None, the reward of a completion whose format is right (an answer
      could be extracted / parsed) but whose answer is wrong (TinyZero: 0.1).
    max_completion_chars: completions longer than this are not parsed at all and get
      `reward_too_long`; it is both a length-penalty option and the bound that keeps graders'
      work linear in a small input.
    reward_too_long: reward of an over-long completion; None means `reward_incorrect`.
    """

    reward_correct: float = 1.0
    reward_incorrect: float = 0.0
    reward_format: float | None = None
    max_completion_chars: int = 262_144
    reward_too_long: float | None = None

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "RewardConfig":
        """A named preset ("binary", "astro", "tinyzero") with optional field overrides."""
        if name not in REWARD_PRESETS:
            raise ValueError(f"unknown reward preset {name!r}; known: {REWARD_PRESETS.names()}")
        return cls(**{**REWARD_PRESETS.get(name), **overrides})

    def reward_for(self, verdict: Verdict) -> float:
        if verdict.correct:
            return self.reward_correct
        if verdict.format_ok and self.reward_format is not None:
            return self.reward_format
        return self.reward_incorrect

    @property
    def too_long_reward(self) -> float:
        return self.reward_incorrect if self.reward_too_long is None else self.reward_too_long


class Task(abc.ABC):
    """A dataset family: prompt formatting, answer extraction and grading. Pure Python.

    Subclasses are frozen dataclasses (so they pickle to grading workers and hash) with a
    `reward: RewardConfig` field, and implement `prompt`, `gold_answer`, `extract`, `_check`
    and, where it makes sense, `reference_completion`.
    """

    name: ClassVar[str] = ""
    # Fields every record of this family must have (checked by `load_records`).
    required_fields: ClassVar[tuple[str, ...]] = ()
    reward: RewardConfig

    # ----- what a family implements -----

    @abc.abstractmethod
    def prompt(self, record: Record, *, chat: bool = False) -> str | ChatMessages:
        """A plain-text prompt, or chat messages `[{"role": "user", "content": ...}]`."""

    @abc.abstractmethod
    def gold_answer(self, record: Record) -> str | None:
        """The gold final answer of a record as a string (None if the record has none)."""

    @abc.abstractmethod
    def extract(self, completion: str) -> str | None:
        """The final answer a completion gives, or None."""

    @abc.abstractmethod
    def _check(self, record: Record, completion: str) -> Verdict:
        """Decides correctness; may raise (grade() turns exceptions into a grade)."""

    def reference_completion(self, record: Record) -> str:
        """A correct completion for SFT warm-up (the dataset's own solution where it has one)."""
        raise NotImplementedError(f"task {self.name!r} has no reference completion")

    # ----- shared behaviour -----

    def grade(self, record: Record, completion: str) -> Grade:
        """Grades one completion. Never raises; safe to call in the training process.

        Work in this process is bounded by the length cap and linear-time parsing; symbolic
        checks (MATH) run in worker processes with a time limit.
        """
        if not isinstance(completion, str):
            return self.failed_grade(f"bad_completion_type: {type(completion).__name__}")
        if len(completion) > self.reward.max_completion_chars:
            return Grade(self.reward.too_long_reward, False, None, "too_long", False)
        try:
            verdict = self._check(record, completion)
        except Exception as error:  # a grader bug must not kill a training run
            return self.failed_grade(f"grader_error: {type(error).__name__}: {error}"[:300])
        extracted = verdict.extracted
        if extracted is not None and len(extracted) > MAX_EXTRACTED_CHARS:
            extracted = extracted[:MAX_EXTRACTED_CHARS]
        return Grade(
            reward=self.reward.reward_for(verdict),
            correct=verdict.correct,
            extracted=extracted,
            reason=verdict.reason,
            format_ok=verdict.format_ok,
        )

    def failed_grade(self, reason: str) -> Grade:
        """The grade of an item that could not be graded (timeout, crash, grader error)."""
        return Grade(self.reward.reward_incorrect, False, None, reason, False)

    def load_records(self, path: str, *, split: str | None = None) -> list[dict[str, Any]]:
        """Reads this family's records from a jsonl/json/parquet file or `datasets` directory.

        Checks the fields the family needs; a missing one raises an error naming the file,
        the line (or row) and the field.
        """
        from jaxreason.data.readers import read_records  # pure Python, no Grain at import

        return read_records(path, split=split, required_fields=self.required_fields)


# ----- registry -----

TASKS: Registry[Callable[..., Task]] = Registry("task")


def register(name: str) -> Callable[[type], type]:
    """Class decorator: makes a task constructible by name through `get(name, **options)`;
    another class under a registered name raises ValueError."""
    return TASKS.register(name)


def names() -> list[str]:
    """The registered task names."""
    return TASKS.names()


def get(name: str, **options: Any) -> Task:
    """Builds the task registered under `name`, so configs pick tasks by string.

    Options are the task's dataclass fields. Reward shaping may be given as
    `reward=RewardConfig(...)`, `reward="astro"` (a preset name), and/or the individual
    `RewardConfig` fields (`reward_correct=...`, `max_completion_chars=...`), which override
    the preset or the task's default reward.
    """
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; registered tasks: {names()}")
    cls = TASKS.get(name)
    reward_fields = {f.name for f in dataclasses.fields(RewardConfig)}
    reward_overrides = {k: options.pop(k) for k in list(options) if k in reward_fields}
    task_fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - set(task_fields))
    if unknown:
        raise TypeError(
            f"task {name!r} has no option(s) {unknown}; options: "
            f"{sorted(set(task_fields) | reward_fields)}"
        )
    reward = options.pop("reward", None)
    if reward is None:
        field = task_fields["reward"]
        reward = field.default_factory() if callable(field.default_factory) else field.default
    elif isinstance(reward, str):
        reward = RewardConfig.preset(reward)
    elif isinstance(reward, Mapping):
        reward = RewardConfig(**reward)
    if not isinstance(reward, RewardConfig):
        raise TypeError(f"reward must be a RewardConfig, a preset name or a dict, got {reward!r}")
    if reward_overrides:
        reward = dataclasses.replace(reward, **reward_overrides)
    return cls(reward=reward, **options)

