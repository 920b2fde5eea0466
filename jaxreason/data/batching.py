"""From prompt/completion records to training batches: tokenize, mask, pad or pack.

A record `{prompt, completion}` becomes one token sequence with a per-token loss weight
(completion tokens only, or every token: ASTRO trains on all of them). A sequence of n tokens
gives n - 1 training positions: `input_ids = tokens[:-1]`, `targets = tokens[1:]`,
`loss_mask = weights[1:]`. Because the shift happens per example, packing several examples
into one row never asks a token to predict the first token of the next example.

Batches are dicts of numpy arrays `[rows, length]`: input_ids, targets, positions (restart at
0 in every example), segment_ids (1, 2, ... per example in a row; 0 = padding), loss_mask
(float32), plus host-side counters that never reach the devices: `example_ids` `[examples]`
(a stable hash of each record in the batch, for logging the data order), `num_truncated` and
`num_skipped` (examples cut to `max_length`, and examples dropped because truncation left
them no loss token).

`BatchIterDataset` is a Grain `IterDataset` of such batches over an `IterDataset` of tokenized
examples. It packs first-fit (an example goes into the first row with room; the batch is done
when one does not fit anywhere) or pads one example per row to a length bucket. Its iterator
state is the parent iterator's state before the example it holds back, so a restored iterator
produces exactly the batches the original would have.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import zlib
from typing import Any, Mapping, Sequence

import numpy as np

import grain
from grain._src.python.dataset import dataset as grain_dataset  # DatasetIterator base class

LOSS_ON = ("completion", "all")
BATCH_FIELDS = ("input_ids", "targets", "positions", "segment_ids", "loss_mask")


class RecordError(ValueError):
    """A record that cannot become a training example (the message names field and record)."""


@dataclasses.dataclass(frozen=True)
class SFTFormat:
    """How records are turned into token sequences.

    prompt_field / completion_field: record fields. The prompt may be a string or a list of
      chat messages `[{"role", "content"}]`.
    chat: render with the tokenizer's chat template (prompt as user turn, completion as the
      assistant turn); otherwise plain concatenation `bos + prompt + completion + eos`.
    loss_on: "completion" (prompt tokens get no loss) or "all" (ASTRO).
    add_bos / add_eos: plain format only (a chat template places its own specials; eos is
      appended in chat mode only if the rendered turn does not already end with it).
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


def _encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False)) if text else []


def _chat_parts(tokenizer: Any, prompt: Any, completion: str) -> tuple[str, str]:
    """(prompt text incl. the assistant header, completion text incl. the end of turn)."""
    messages = list(prompt) if isinstance(prompt, (list, tuple)) else [
        {"role": "user", "content": str(prompt)}]
    prompt_text = tokenizer.apply_chat_template(messages, tokenize=False,
                                                add_generation_prompt=True)
    full = tokenizer.apply_chat_template(
        messages + [{"role": "assistant", "content": completion}], tokenize=False)
    if full.startswith(prompt_text):
        return prompt_text, full[len(prompt_text):]
    return prompt_text, completion  # templates that rewrite earlier turns: keep the raw text


def prompt_token_ids(prompt: Any, tokenizer: Any, fmt: SFTFormat) -> list[int]:
    """The prompt's tokens exactly as training sees them (for sampling from trained models:
    pass these ids to the sampler so generation continues from the same context)."""
    if fmt.chat:
        messages = list(prompt) if isinstance(prompt, (list, tuple)) else [
            {"role": "user", "content": str(prompt)}]
        return _encode(tokenizer, tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True))
    if not isinstance(prompt, str):
        raise RecordError("the prompt is not a string; set data.chat=True for chat-message "
                          "prompts")
    ids = _encode(tokenizer, prompt)
    if fmt.add_bos and tokenizer.bos_token_id is not None:
        ids.insert(0, tokenizer.bos_token_id)
    return ids


def tokenize_record(record: Mapping[str, Any], tokenizer: Any, fmt: SFTFormat) -> dict[str, Any]:
    """`{tokens int32 [n], loss_weights bool [n], example_id int, truncated bool}`."""
    prompt = _field(record, fmt.prompt_field)
    completion = _field(record, fmt.completion_field)
    if not isinstance(completion, str):
        raise RecordError(f"field {fmt.completion_field!r} must be a string, got "
                          f"{type(completion).__name__}")
    if fmt.chat:
        prompt_text, completion_text = _chat_parts(tokenizer, prompt, completion)
        prompt_ids, completion_ids = _encode(tokenizer, prompt_text), _encode(tokenizer,
                                                                              completion_text)
        eos = tokenizer.eos_token_id
        if fmt.add_eos and eos is not None and (not completion_ids or completion_ids[-1] != eos):
            completion_ids.append(eos)
    else:
        if not isinstance(prompt, str):
            raise RecordError(f"field {fmt.prompt_field!r} is not a string; set data.chat=True "
                              f"for chat-message prompts")
        prompt_ids, completion_ids = prompt_token_ids(prompt, tokenizer, fmt), _encode(
            tokenizer, completion)
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


class SFTTokenize(grain.transforms.Map):
    """Grain map: record -> tokenized example (see `tokenize_record`)."""

    def __init__(self, tokenizer: Any, fmt: SFTFormat) -> None:
        self.tokenizer, self.fmt = tokenizer, fmt

    def map(self, record: Mapping[str, Any]) -> dict[str, Any]:
        return tokenize_record(record, self.tokenizer, self.fmt)


# ----------------------------------------------------------------------------- rows

def empty_batch(rows: int, length: int) -> dict[str, np.ndarray]:
    batch = {name: np.zeros((rows, length), np.int32) for name in BATCH_FIELDS}
    batch["loss_mask"] = np.zeros((rows, length), np.float32)
    return batch


def place(batch: dict[str, np.ndarray], row: int, start: int, segment: int,
          example: Mapping[str, Any]) -> int:
    """Write one example's training positions into `row` from `start`; returns the end."""
    tokens, weights = example["tokens"], example["loss_weights"]
    n = len(tokens) - 1
    end = start + n
    batch["input_ids"][row, start:end] = tokens[:-1]
    batch["targets"][row, start:end] = tokens[1:]
    batch["positions"][row, start:end] = np.arange(n)
    batch["segment_ids"][row, start:end] = segment
    batch["loss_mask"][row, start:end] = weights[1:]
    return end


def length_bucket(n: int, max_length: int, minimum: int = 16) -> int:
    """Smallest power of two >= n (at least `minimum`), capped at `max_length`."""
    bucket = minimum
    while bucket < n:
        bucket *= 2
    return min(bucket, max_length)


def pad_examples(examples: Sequence[Mapping[str, Any]], rows: int, length: int
                 ) -> dict[str, np.ndarray]:
    """One example per row (rows beyond the examples are all padding)."""
    batch = empty_batch(rows, length)
    for row, example in enumerate(examples):
        place(batch, row, 0, 1, example)
    batch["example_ids"] = np.asarray([e["example_id"] for e in examples], np.int64)
    return batch


class FirstFit:
    """First-fit placement of examples into `rows` rows of `length` positions."""

    def __init__(self, rows: int, length: int) -> None:
        self.length = length
        self.fill = [0] * rows
        self.segments = [0] * rows
        self.placements: list[tuple[int, int, int]] = []  # (row, start, segment) per example

    def add(self, positions: int) -> bool:
        """Place an example of `positions` training positions; False if no row has room."""
        row = next((r for r, f in enumerate(self.fill) if f + positions <= self.length), None)
        if row is None:
            return False
        self.segments[row] += 1
        self.placements.append((row, self.fill[row], self.segments[row]))
        self.fill[row] += positions
        return True


def pack_examples(examples: Sequence[Mapping[str, Any]], rows: int, length: int
                  ) -> tuple[dict[str, np.ndarray], int]:
    """First-fit packing of a prefix of `examples`; returns (batch, number packed)."""
    plan = FirstFit(rows, length)
    count = 0
    for example in examples:
        if not plan.add(len(example["tokens"]) - 1):
            break
        count += 1
    return _packed_batch(examples[:count], plan, rows, length), count


def _packed_batch(examples: Sequence[Mapping[str, Any]], plan: FirstFit, rows: int,
                  length: int) -> dict[str, np.ndarray]:
    batch = empty_batch(rows, length)
    for example, (row, start, segment) in zip(examples, plan.placements):
        place(batch, row, start, segment, example)
    batch["example_ids"] = np.asarray([e["example_id"] for e in examples], np.int64)
    return batch


# ----------------------------------------------------------------------------- Grain

class BatchIterDataset(grain.IterDataset):
    """Batches of `rows` rows from an IterDataset of tokenized examples.

    packing: first-fit packing into rows of exactly `max_length` positions; otherwise one
    example per row, padded to `length_bucket` of the longest (or to `max_length` with
    `pad_to_max`, which multi-host runs need: every process must build the same shape).
    `drop_remainder`: at the end of finite data, drop the last partial batch instead of
    padding it with empty rows.
    """

    def __init__(self, parent: grain.IterDataset, *, rows: int, max_length: int,
                 packing: bool, pad_to_max: bool = False, drop_remainder: bool = False) -> None:
        super().__init__(parent)
        if rows < 1 or max_length < 1:
            raise ValueError(f"rows and max_length must be >= 1, got {rows}, {max_length}")
        self.rows, self.max_length = rows, max_length
        self.packing, self.pad_to_max, self.drop_remainder = packing, pad_to_max, drop_remainder

    def __iter__(self) -> "_BatchIterator":
        return _BatchIterator(self._parent.__iter__(), self)

    def __str__(self) -> str:
        return (f"BatchIterDataset(rows={self.rows}, max_length={self.max_length}, "
                f"packing={self.packing})")


class _BatchIterator(grain_dataset.DatasetIterator):
    def __init__(self, parent: grain_dataset.DatasetIterator, spec: BatchIterDataset) -> None:
        super().__init__(parent)
        self._spec = spec
        self._held: list[tuple[dict[str, Any], Any]] = []  # (parent state before, example)
        self._exhausted = False
        self._skipped = 0  # examples without a loss token since the last batch

    def _take(self) -> Any | None:
        """Next example (held back ones first), or None at the end of the parent."""
        if self._held:
            return self._held.pop(0)
        if self._exhausted:
            return None
        state = self._parent.get_state()
        try:
            example = next(self._parent)
        except StopIteration:
            self._exhausted = True
            return None
        if not example["loss_weights"][1:].any():  # nothing to learn (e.g. truncated prompt)
            self._skipped += 1
            return self._take()
        return state, example

    def __next__(self) -> dict[str, np.ndarray]:
        spec = self._spec
        taken: list[tuple[dict[str, Any], Any]] = []
        plan = FirstFit(spec.rows, spec.max_length)
        while spec.packing or len(taken) < spec.rows:
            item = self._take()
            if item is None:
                break
            if spec.packing and not plan.add(len(item[1]["tokens"]) - 1):
                self._held.insert(0, item)  # starts the next batch
                break
            taken.append(item)
        partial = self._exhausted and (spec.packing or len(taken) < spec.rows)
        if not taken or (spec.drop_remainder and partial):
            raise StopIteration
        examples = [e for _, e in taken]
        if spec.packing:
            batch = _packed_batch(examples, plan, spec.rows, spec.max_length)
        else:
            longest = max(len(e["tokens"]) - 1 for e in examples)
            length = spec.max_length if spec.pad_to_max else length_bucket(longest,
                                                                          spec.max_length)
            batch = pad_examples(examples, spec.rows, length)
        batch["num_truncated"] = np.asarray(sum(bool(e.get("truncated")) for e in examples))
        batch["num_skipped"] = np.asarray(self._skipped)
        self._skipped = 0
        return batch

    def get_state(self) -> dict[str, Any]:
        if self._held:
            return {"parent": self._held[0][0], "exhausted": False}
        return {"parent": self._parent.get_state(), "exhausted": self._exhausted}

    def set_state(self, state: dict[str, Any]) -> None:
        self._parent.set_state(state["parent"])
        self._held = []
        self._exhausted = bool(state.get("exhausted", False))


def sft_batch_dataset(data: Any, tokenizer: Any, fmt: SFTFormat, *, rows: int, packing: bool,
                      task: Any = None,
                      seed: int = 0, shuffle: bool = True, num_epochs: int | None = None,
                      shard_index: int = 0, shard_count: int = 1, pad_to_max: bool = False,
                      drop_remainder: bool = False, num_threads: int = 2) -> grain.IterDataset:
    """Batches for SFT: records (a path or a sequence, see `readers.make_map_dataset`) ->
    shuffle -> epochs -> this process's shard -> tokenize -> pad / pack into `rows` rows.

    With a `task`, records are the task's records and become prompt/completion through it
    (`task_sft_record`); otherwise they need `fmt.prompt_field` and `fmt.completion_field`.
    Each process builds `rows` = global batch rows / process count; with strided sharding the
    union of the processes' batches at a step holds the examples a single process would use.
    """
    from jaxreason.data import readers

    required = task.required_fields if task is not None else (fmt.prompt_field,
                                                               fmt.completion_field)
    records = readers.make_map_dataset(
        data, seed=seed, shuffle=shuffle, num_epochs=num_epochs, shard_index=shard_index,
        shard_count=shard_count, required_fields=required)
    if task is not None:
        records = records.map(TaskToSFT(task, fmt.chat))
        fmt = dataclasses.replace(fmt, prompt_field="prompt", completion_field="completion")
    examples = records.map(SFTTokenize(tokenizer, fmt)).to_iter_dataset(
        grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=max(4, 2 * rows)))
    return BatchIterDataset(examples, rows=rows, max_length=fmt.max_length, packing=packing,
                            pad_to_max=pad_to_max, drop_remainder=drop_remainder)
