"""SRL (supervised RL): write the next step of an expert solution; reward = string similarity.

A record is one step instance `{"problem", "previous_steps": [...], "target_step"}` (plus ids:
`traj_id`, `k`). The model is asked for an inner monologue in `<think> ... </think>` and then
only the next step. Grading:

* the **action** is the text after the last `</think>`, stripped;
* the **format** is valid when the completion (with the prompt's prefilled `<think>` if
  `prefill_think`) has exactly one `<think>` and one `</think>`, the opening tag first, and
  the action is non-empty (and at most `max_action_chars` long);
* a valid completion earns `difflib.SequenceMatcher(None, action, target_step).ratio()`
  (`order="target_first"` swaps the arguments; `autojunk` is passed through), in [0, 1];
  anything else earns `format_error_reward` (-1);
* `Grade.correct` is an exact match of the action and the target step (both stripped);
  `Grade.extracted` is the action; `Grade.format_ok` the format check.

The think text never enters the similarity. Work is bounded: completions over
`reward.max_completion_chars` and actions over `max_action_chars` are format errors before any
matching, so one grade costs at most about `max_action_chars x len(target_step)` steps. Pure
Python, no JAX.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from jaxreason.tasks.base import (ChatMessages, Grade, Record, RewardConfig, Task, Verdict,
                                  register)

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
ORDERS = ("action_first", "target_first")

SRL_SYSTEM_PROMPT = (
    "You will be given a problem and, possibly, the first steps of a solution. Continue the "
    "solution with exactly one step: the next one. First think it over inside <think> "
    "</think>, then write only that next step after </think>, in the style of the previous "
    "steps."
)


def similarity(action: str, target: str, *, order: str = "action_first",
               autojunk: bool = True) -> float:
    """`difflib.SequenceMatcher(None, a, b, autojunk=autojunk).ratio()`, with (a, b) =
    (action, target) for `order="action_first"` (the default) or (target, action)."""
    a, b = (action, target) if order == "action_first" else (target, action)
    return difflib.SequenceMatcher(None, a, b, autojunk=autojunk).ratio()


def split_action(completion: str, *, prefill_think: bool = False) -> tuple[str | None, str]:
    """(action, reason): the stripped text after the last `</think>` when the format is valid
    (one think block, opened before it is closed, non-empty action), else (None, reason)."""
    text = THINK_OPEN + completion if prefill_think else completion
    opens, closes = text.count(THINK_OPEN), text.count(THINK_CLOSE)
    if closes == 0:
        return None, "format_error: no </think>"
    if opens != 1 or closes != 1:
        return None, f"format_error: {opens} <think> and {closes} </think> tags"
    close = text.rfind(THINK_CLOSE)
    if text.find(THINK_OPEN) > close:
        return None, "format_error: </think> before <think>"
    action = text[close + len(THINK_CLOSE):].strip()
    if not action:
        return None, "format_error: empty action"
    return action, "ok"


def _numbered(steps: Any) -> str:
    return "\n".join(f"{i}. {str(step).strip()}" for i, step in enumerate(steps, 1))


@register("srl")
@dataclasses.dataclass(frozen=True)
class SRLTask(Task):
    """Step instances of expert trajectories, graded by similarity to the expert's step.

    order: "action_first" (SequenceMatcher(None, action, target), the paper's order) or
      "target_first".
    autojunk: difflib's popular-element heuristic (acts only when the second sequence has
      200+ characters); True is difflib's default.
    format_error_reward: reward of a completion with a format error (-1).
    max_action_chars: a longer action is a format error ("too_long"), which bounds the work.
    prefill_think: the plain prompt ends with `<think>` (the completion continues the
      thought); the grader counts that tag as part of the completion.
    system_prompt: the instruction (plain prompts start with it; chat prompts send it as the
      system turn); None: `SRL_SYSTEM_PROMPT`.
    `reward` (a RewardConfig) only contributes `max_completion_chars`.
    """

    reward: RewardConfig = dataclasses.field(default_factory=RewardConfig)
    order: str = "action_first"
    autojunk: bool = True
    format_error_reward: float = -1.0
    max_action_chars: int = 4096
    prefill_think: bool = False
    system_prompt: str | None = None

    name = "srl"
    required_fields = ("problem", "previous_steps", "target_step")

    def __post_init__(self) -> None:
        if self.order not in ORDERS:
            raise ValueError(f"srl order must be one of {ORDERS}, got {self.order!r}")

    # ----- prompts

    def instruction(self) -> str:
        return self.system_prompt if self.system_prompt is not None else SRL_SYSTEM_PROMPT

    def user_text(self, record: Record) -> str:
        previous = list(record.get("previous_steps") or [])
        parts = [f"Problem:\n{str(record['problem']).strip()}"]
        if previous:
            parts.append(f"Previous steps:\n{_numbered(previous)}")
        else:
            parts.append("Previous steps: none yet.")
        parts.append(f"Write step {len(previous) + 1}.")
        return "\n\n".join(parts)

    def prompt(self, record: Record, *, chat: bool = False) -> str | ChatMessages:
        """Chat: a system turn with the instruction and a user turn with the problem and the
        numbered previous steps. Plain: the same text, then "Assistant:" (and `<think>` with
        `prefill_think`)."""
        if chat:
            return [{"role": "system", "content": self.instruction()},
                    {"role": "user", "content": self.user_text(record)}]
        text = f"{self.instruction()}\n\n{self.user_text(record)}\n\nAssistant:"
        return text + (f" {THINK_OPEN}" if self.prefill_think else "")

    def gold_answer(self, record: Record) -> str | None:
        return str(record["target_step"]).strip()

    def extract(self, completion: str) -> str | None:
        action, _ = split_action(completion, prefill_think=self.prefill_think)
        return action

    def reference_completion(self, record: Record, *, chat: bool = False) -> str:
        """An empty monologue, then the expert's step (a format-correct completion with
        reward 1, for SFT warm-up on the SRL format)."""
        opening = "" if self.prefill_think and not chat else THINK_OPEN
        return f"{opening}\n{THINK_CLOSE}\n{str(record['target_step']).strip()}"

    # ----- grading

    def _check(self, record: Record, completion: str) -> Verdict:
        action, reason = split_action(completion, prefill_think=self.prefill_think)
        if action is None:
            return Verdict(False, None, reason, False)
        if len(action) > self.max_action_chars:
            return Verdict(False, action, "format_error: too_long", False)
        target = str(record["target_step"]).strip()
        return Verdict(action == target, action, "exact_match" if action == target else
                       "similarity", True)

    def grade(self, record: Record, completion: str) -> Grade:
        """The similarity reward (see the module docstring). Never raises."""
        if not isinstance(completion, str):
            return self.failed_grade(f"bad_completion_type: {type(completion).__name__}")
        if len(completion) > self.reward.max_completion_chars:
            return Grade(self.format_error_reward, False, None, "too_long", False)
        try:
            verdict = self._check(record, completion)
            if not verdict.format_ok:
                reward = self.format_error_reward
            else:
                reward = similarity(verdict.extracted, str(record["target_step"]).strip(),
                                    order=self.order, autojunk=self.autojunk)
        except Exception as error:  # a grader bug must not kill a training run
            return self.failed_grade(f"grader_error: {type(error).__name__}: {error}"[:300])
        extracted = verdict.extracted
        if extracted is not None and len(extracted) > 512:
            extracted = extracted[:512]
        return Grade(float(reward), verdict.correct, extracted, verdict.reason,
                     verdict.format_ok)

    def failed_grade(self, reason: str) -> Grade:
        return Grade(self.format_error_reward, False, None, reason, False)
