"""Records -> tokenized training examples: `{tokens, loss_weights, example_id, truncated}`.

A record `{prompt, completion}` becomes one token sequence with a per-token loss weight
(completion tokens only, or every token: ASTRO trains on all of them). The prompt is rendered
by `jaxreason.prompting` (the same rendering GRPO and evaluation sample from); rows and
packing are `jaxreason.data.rows`' business.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import zlib
from typing import Any, Mapping

import grain
import numpy as np

from jaxreason.prompting import (PromptFormat, RecordError, chat_parts, encode,
                                 prompt_token_ids)

LOSS_ON = ("completion", "all")

__all__ = ["LOSS_ON", "ExampleFormat", "RecordError", "record_id", "tokenize_record",
           "task_sft_record", "TaskToSFT", "Tokenize"]


@dataclasses.dataclass(frozen=True)
class ExampleFormat:
    """How a `{prompt, completion}` record becomes a training example.

    prompt_field / completion_field: record fields. The prompt may be a string or a list of
      chat messages `[{"role", "content"}]`.
    chat / add_bos: the prompt's rendering (`prompt_format`, shared with sampling).
    loss_on: "completion" (prompt tokens get no loss) or "all" (ASTRO).
    add_eos: append EOS (in chat mode only if the rendered turn does not already end with it).
    max_length: training positions per example (tokens - 1); longer examples are truncated
      on the right.
    """

    prompt_field: str = "prompt"
    completion_field: str = "completion"
    chat: bool = False
    loss_on: str = "completion"
    add_bos: bool = True
    add_eos: bool = True
    max_length: int = 1024

    def __post_init__(self) -> None:
        if self.loss_on not in LOSS_ON:
            raise ValueError(f"loss_on must be one of {LOSS_ON}, got {self.loss_on!r}")
        if self.max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {self.max_length}")

    @property
    def prompt_format(self) -> PromptFormat:
        return PromptFormat(chat=self.chat, add_bos=self.add_bos, prompt_field=self.prompt_field)


def record_id(record: Mapping[str, Any]) -> int:
    """A stable 63-bit id of a record's content (same record, same id, in every process)."""
    text = json.dumps(record, sort_keys=True, default=str).encode()
    return (zlib.crc32(text) << 31) ^ zlib.adler32(text)


def _field(record: Any, name: str) -> Any:
    if not isinstance(record, Mapping):
        raise RecordError(f"expected a record (dict), got {type(record).__name__}")
    if name not in record or record[name] is None:
        raise RecordError(f"record has no field {name!r} (fields present: {sorted(record)}); "
                          f"set data.prompt_field / data.completion_field")
    return record[name]


def tokenize_record(record: Mapping[str, Any], tokenizer: Any, fmt: ExampleFormat
                    ) -> dict[str, Any]:
    """`{tokens int32 [n], loss_weights bool [n], example_id int, truncated bool}`."""
    prompt = _field(record, fmt.prompt_field)
    completion = _field(record, fmt.completion_field)
    if not isinstance(completion, str):
        raise RecordError(f"field {fmt.completion_field!r} must be a string, got "
                          f"{type(completion).__name__}")
    if fmt.chat:
        prompt_text, completion_text = chat_parts(tokenizer, prompt, completion)
        prompt_ids, completion_ids = encode(tokenizer, prompt_text), encode(tokenizer,
                                                                            completion_text)
        eos = tokenizer.eos_token_id
        if fmt.add_eos and eos is not None and (not completion_ids or completion_ids[-1] != eos):
            completion_ids.append(eos)
    else:
        if not isinstance(prompt, str):
            raise RecordError(f"field {fmt.prompt_field!r} is not a string; set data.chat=True "
                              f"for chat-message prompts")
        prompt_ids = prompt_token_ids(prompt, tokenizer, fmt.prompt_format)
        completion_ids = encode(tokenizer, completion)
        if fmt.add_eos and tokenizer.eos_token_id is not None:
            completion_ids.append(tokenizer.eos_token_id)
    tokens = np.asarray(prompt_ids + completion_ids, np.int32)
    weights = np.ones(len(tokens), bool)
    if fmt.loss_on == "completion":
        weights[: len(prompt_ids)] = False
    truncated = len(tokens) > fmt.max_length + 1
    if truncated:
        tokens, weights = tokens[: fmt.max_length + 1], weights[: fmt.max_length + 1]
    return {"tokens": tokens, "loss_weights": weights, "example_id": record_id(record),
            "truncated": truncated}


def task_sft_record(record: Mapping[str, Any], task: Any, chat: bool) -> dict[str, Any]:
    """`{prompt, completion}` of a task record: the task's prompt and its reference completion
    (the dataset's own solution, or a solver's)."""
    try:
        if "chat" in inspect.signature(task.reference_completion).parameters:
            completion = task.reference_completion(record, chat=chat)
        else:  # tasks whose reference does not depend on the prompt style
            completion = task.reference_completion(record)
        prompt = task.prompt(record, chat=chat)
    except KeyError as e:
        fields = sorted(record) if isinstance(record, Mapping) else []
        raise RecordError(f"record has no field {e.args[0]!r}, which task {task.name!r} needs "
                          f"for SFT prompts and targets (fields present: {fields})") from None
    return {"prompt": prompt, "completion": completion}


class TaskToSFT(grain.transforms.Map):
    """Grain map: task record -> `{prompt, completion}` (see `task_sft_record`)."""

    def __init__(self, task: Any, chat: bool) -> None:
        self.task, self.chat = task, chat

    def map(self, record: Mapping[str, Any]) -> dict[str, Any]:
        return task_sft_record(record, self.task, self.chat)


class Tokenize(grain.transforms.Map):
    """Grain map: record -> tokenized example (see `tokenize_record`)."""

    def __init__(self, tokenizer: Any, fmt: ExampleFormat) -> None:
        self.tokenizer, self.fmt = tokenizer, fmt

    def map(self, record: Mapping[str, Any]) -> dict[str, Any]:
        return tokenize_record(record, self.tokenizer, self.fmt)
