"""The Grain batch iterator of SFT: records -> shuffle -> epochs -> shard -> tokenize -> rows.

`BatchIterDataset` is a Grain `IterDataset` of batches (dicts of numpy `[rows, length]`
arrays built by `jaxreason.data.rows`) over an `IterDataset` of tokenized examples. It packs
first-fit (an example goes into the first row with room; the batch is done when one does not
fit anywhere) or pads one example per row to a length bucket. Its iterator state is the parent
iterator's state before the example it holds back, so a restored iterator produces exactly
the batches the original would have (exact resume).

Besides the row fields, batches carry host-side counters that never reach the devices:
`example_ids` `[examples]` (a stable hash of each record, for logging the data order),
`num_truncated` and `num_skipped` (examples cut to `max_length`, and examples dropped because
truncation left them no loss token).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import grain
import numpy as np

from jaxreason.data.rows import FirstFit, length_bucket, packed_rows, pad_examples
from jaxreason.data.tokenize import ExampleFormat, TaskToSFT, Tokenize
from jaxreason.prompting import RecordError


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


_MAX_SKIPPED_IN_A_ROW = 1000  # then the data cannot train anything: a clear error


class _BatchIterator(grain.DatasetIterator):  # grain's public iterator base class
    def __init__(self, parent: grain.DatasetIterator, spec: BatchIterDataset) -> None:
        super().__init__(parent)
        self._spec = spec
        self._held: list[tuple[dict[str, Any], Any]] = []  # (parent state before, example)
        self._exhausted = False
        self._skipped = 0  # examples without a loss token since the last batch

    def _take(self) -> Any | None:
        """Next example (held back ones first), or None at the end of the parent."""
        if self._held:
            return self._held.pop(0)
        skipped_in_a_row = 0
        while not self._exhausted:
            state = self._parent.get_state()
            try:
                example = next(self._parent)
            except StopIteration:
                self._exhausted = True
                break
            if example["loss_weights"][1:].any():
                return state, example
            # nothing to learn (e.g. the prompt alone fills data.max_length)
            self._skipped += 1
            skipped_in_a_row += 1
            if skipped_in_a_row >= _MAX_SKIPPED_IN_A_ROW:
                raise RecordError(
                    f"data.max_length: {skipped_in_a_row} examples in a row have no loss token "
                    f"left after truncation to {self._spec.max_length} positions (prompts "
                    f"longer than the budget?); raise data.max_length")
        return None

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
            batch = packed_rows(examples, plan, spec.rows, spec.max_length)
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


def sft_batch_dataset(data: Any, tokenizer: Any, fmt: ExampleFormat, *, rows: int,
                      packing: bool, task: Any = None, seed: int = 0, shuffle: bool = True,
                      num_epochs: int | None = None, shard_index: int = 0, shard_count: int = 1,
                      pad_to_max: bool = False, drop_remainder: bool = False,
                      num_threads: int = 2) -> grain.IterDataset:
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
    examples = records.map(Tokenize(tokenizer, fmt)).to_iter_dataset(
        grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=max(4, 2 * rows)))
    return BatchIterDataset(examples, rows=rows, max_length=fmt.max_length, packing=packing,
                            pad_to_max=pad_to_max, drop_remainder=drop_remainder)
