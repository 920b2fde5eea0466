"""Preference pairs: `{prompt, chosen, rejected}` records -> checked, tokenized pairs -> batches.

A pair record holds a prompt (a string, or chat messages with `chat=True`) and two responses
to it, the preferred one (`chosen`) and the other (`rejected`). Optional booleans
`chosen_truncated` / `rejected_truncated` say a response was cut off by a token budget (the
`pairs` stage sets them): such a response gets no EOS appended.

Every pair is checked when the file is read, before any training: a missing field, an empty
response, a prompt over `max_prompt_tokens`, or a pair whose two sequences do not fit one row
of `max_length` positions is a `PairError` naming the file, the line and the field (jsonl; other
formats name the record index). With `skip_invalid` such pairs are dropped and counted by
reason instead. Nothing is ever truncated: a response is trained on whole or not at all.

Tokenization is SFT's (`data.tokenize.tokenize_record`: the prompt rendered by
`jaxreason.prompting`, loss on the response tokens, EOS appended), once per side.

`PairBatchIterDataset` turns a Grain dataset of pair indices into batch plans (which pairs go
where in `rows` rows); the rows themselves are built by `data.rows.pair_rows`. Its iterator
state restores exactly, like the SFT batcher's.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Mapping, Sequence

import grain

from jaxreason.data.rows import FirstFit, pair_positions
from jaxreason.data.tokenize import ExampleFormat, RecordError, record_id, tokenize_record

SKIP_REASONS = ("missing_field", "empty_response", "long_prompt", "too_long")
_NO_LIMIT = 1 << 30


class PairError(RecordError):
    """A pair record that cannot be trained on (names file, line and field)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class PairFormat:
    """prompt_field / chosen_field / rejected_field: record fields. chat / add_bos / add_eos:
    as for SFT. max_length: positions of a row, which must hold a whole pair (prompt + chosen
    and prompt + rejected). max_prompt_tokens: the prompt budget (0: no budget besides
    max_length). skip_invalid: drop and count invalid pairs instead of raising."""

    prompt_field: str = "prompt"
    chosen_field: str = "chosen"
    rejected_field: str = "rejected"
    chat: bool = False
    add_bos: bool = True
    add_eos: bool = True
    max_length: int = 1024
    max_prompt_tokens: int = 0
    skip_invalid: bool = False

    def example_format(self, add_eos: bool) -> ExampleFormat:
        return ExampleFormat(prompt_field="prompt", completion_field="completion",
                             chat=self.chat, loss_on="completion", add_bos=self.add_bos,
                             add_eos=add_eos, max_length=_NO_LIMIT)


def tokenize_pair(record: Mapping[str, Any], tokenizer: Any, fmt: PairFormat, where: str
                  ) -> dict[str, Any]:
    """`{chosen, rejected: {tokens, loss_weights}, prompt_tokens, example_id}` of one record;
    `PairError` (naming `where` and the field) if it cannot be trained on whole."""
    if not isinstance(record, Mapping):
        raise PairError(f"{where}: expected a JSON object, got {type(record).__name__}",
                        "missing_field")
    for field in (fmt.prompt_field, fmt.chosen_field, fmt.rejected_field):
        if field not in record or record[field] is None:
            raise PairError(f"{where}: field {field!r} is missing (fields present: "
                            f"{sorted(record)})", "missing_field")
    for field in (fmt.chosen_field, fmt.rejected_field):
        value = record[field]
        if not isinstance(value, str):
            raise PairError(f"{where}: field {field!r} must be a string, got "
                            f"{type(value).__name__}", "missing_field")
        if not value.strip():
            raise PairError(f"{where}: field {field!r} is empty", "empty_response")
    prompt = record[fmt.prompt_field]
    if not fmt.chat and not isinstance(prompt, str):
        raise PairError(f"{where}: field {fmt.prompt_field!r} is not a string; set "
                        f"data.chat=True for chat-message prompts", "missing_field")
    sides = {}
    for side, field in (("chosen", fmt.chosen_field), ("rejected", fmt.rejected_field)):
        add_eos = fmt.add_eos and not record.get(f"{side}_truncated", False)
        try:
            example = tokenize_record({"prompt": prompt, "completion": record[field]},
                                      tokenizer, fmt.example_format(add_eos))
        except RecordError as e:
            raise PairError(f"{where}: field {field!r}: {e}", "missing_field") from None
        sides[side] = {"tokens": example["tokens"], "loss_weights": example["loss_weights"]}
    prompt_tokens = int((~sides["chosen"]["loss_weights"]).sum())
    if fmt.max_prompt_tokens and prompt_tokens > fmt.max_prompt_tokens:
        raise PairError(f"{where}: field {fmt.prompt_field!r}: {prompt_tokens} tokens exceed "
                        f"the prompt budget dpo.max_prompt_tokens={fmt.max_prompt_tokens}",
                        "long_prompt")
    pair = {**sides, "prompt_tokens": prompt_tokens, "example_id": record_id(record)}
    needed = pair_positions(pair)
    if needed > fmt.max_length:
        chosen_n = len(sides["chosen"]["tokens"]) - prompt_tokens
        rejected_n = len(sides["rejected"]["tokens"]) - prompt_tokens
        field = fmt.chosen_field if chosen_n >= rejected_n else fmt.rejected_field
        raise PairError(
            f"{where}: field {field!r}: the pair needs {needed} positions (prompt "
            f"{prompt_tokens} + chosen {chosen_n} and prompt + rejected {rejected_n} tokens, "
            f"side by side in one row), more than data.max_length={fmt.max_length}; a pair is "
            f"never truncated: raise data.max_length or set dpo.skip_invalid_pairs=True",
            "too_long")
    return pair


def read_pair_records(path: str) -> list[tuple[str, Any]]:
    """(where, record) of every record of a pairs file: `path:line` for jsonl (blank lines
    skipped), `path: record i` for other formats."""
    from jaxreason.data import readers

    if path.endswith(".jsonl") and not os.path.isdir(path):
        out = []
        with open(path, "rb") as f:
            for line_number, line in enumerate(f, start=1):
                if line.strip():
                    out.append((f"{path}:{line_number}",
                                readers.parse_jsonl_line(line, path, line_number)))
        return out
    return [(f"{path}: record {i}", r) for i, r in enumerate(readers.read_records(path))]


def load_pairs(path: str, tokenizer: Any, fmt: PairFormat
               ) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Tokenized pairs of a file (each with `where`, its file position) and the number of
    pairs skipped per reason (all zero unless `fmt.skip_invalid`)."""
    pairs, skipped = [], {reason: 0 for reason in SKIP_REASONS}
    for where, record in read_pair_records(path):
        try:
            pair = tokenize_pair(record, tokenizer, fmt, where)
        except PairError as e:
            if not fmt.skip_invalid:
                raise
            skipped[e.reason] += 1
            continue
        pair["where"] = where
        pairs.append(pair)
    if not pairs:
        raise PairError(f"{path}: no trainable pairs (skipped: {skipped})", "missing_field")
    return pairs, skipped


def pair_texts(path: str, fmt: PairFormat, limit: int = 20000) -> list[str]:
    """Prompt + response texts of the first records (to train a tiny tokenizer on)."""
    texts = []
    for _, record in read_pair_records(path)[:limit]:
        prompt = record.get(fmt.prompt_field, "")
        if isinstance(prompt, list):
            prompt = "\n".join(str(m.get("content", "")) for m in prompt)
        for field in (fmt.chosen_field, fmt.rejected_field):
            texts.append(f"{prompt}{record.get(field, '')}")
    return texts


def plan_batches(positions: Sequence[int], rows: int, length: int, packing: bool
                 ) -> list[tuple[list[int], list[tuple[int, int, int]]]]:
    """All batches of pairs with `positions` taken in order (the reference pre-pass):
    (pair indices, placements) per batch."""
    out, i = [], 0
    while i < len(positions):
        plan, taken = FirstFit(rows, length), []
        while i < len(positions) and (packing or len(taken) < rows):
            if packing and not plan.add(positions[i]):
                break
            if not packing:
                plan.placements.append((len(taken), 0, 1))
            taken.append(i)
            i += 1
        out.append((taken, plan.placements))
    return out


class PairBatchIterDataset(grain.IterDataset):
    """Batch plans `{"pair_ids": [...], "placements": [(row, start, k), ...]}` over a Grain
    `IterDataset` of pair indices: first-fit packing of whole pairs into `rows` rows of
    `length` positions (a batch ends when the next pair fits no row), or one pair per row."""

    def __init__(self, parent: grain.IterDataset, positions: Sequence[int], *, rows: int,
                 length: int, packing: bool) -> None:
        super().__init__(parent)
        self.positions, self.rows, self.length = list(positions), rows, length
        self.packing = packing

    def __iter__(self) -> "_PairBatchIterator":
        return _PairBatchIterator(self._parent.__iter__(), self)

    def __str__(self) -> str:
        return f"PairBatchIterDataset(rows={self.rows}, length={self.length})"


class _PairBatchIterator(grain.DatasetIterator):
    def __init__(self, parent: grain.DatasetIterator, spec: PairBatchIterDataset) -> None:
        super().__init__(parent)
        self._spec = spec
        self._held: tuple[Any, int] | None = None  # (parent state before it, pair index)
        self._exhausted = False

    def _take(self) -> tuple[Any, int] | None:
        if self._held is not None:
            item, self._held = self._held, None
            return item
        if self._exhausted:
            return None
        state = self._parent.get_state()
        try:
            return state, int(next(self._parent))
        except StopIteration:
            self._exhausted = True
            return None

    def __next__(self) -> dict[str, Any]:
        spec = self._spec
        plan, taken = FirstFit(spec.rows, spec.length), []
        while spec.packing or len(taken) < spec.rows:
            item = self._take()
            if item is None:
                break
            if spec.packing and not plan.add(spec.positions[item[1]]):
                self._held = item
                break
            if not spec.packing:
                plan.placements.append((len(taken), 0, 1))
            taken.append(item[1])
        if not taken:
            raise StopIteration
        return {"pair_ids": taken, "placements": list(plan.placements)}

    def get_state(self) -> dict[str, Any]:
        if self._held is not None:
            return {"parent": self._held[0], "exhausted": False}
        return {"parent": self._parent.get_state(), "exhausted": self._exhausted}

    def set_state(self, state: dict[str, Any]) -> None:
        self._parent.set_state(state["parent"])
        self._held = None
        self._exhausted = bool(state.get("exhausted", False))


def pair_batches(num_pairs: int, positions: Sequence[int], *, rows: int, length: int,
                 packing: bool, seed: int, shuffle: bool, num_epochs: int | None,
                 shard_index: int = 0, shard_count: int = 1) -> PairBatchIterDataset:
    """Batch plans over pair indices: shuffle -> epochs -> this process's shard -> packing."""
    from jaxreason.data import readers

    indices = readers.make_map_dataset(list(range(num_pairs)), seed=seed, shuffle=shuffle,
                                       num_epochs=num_epochs, shard_index=shard_index,
                                       shard_count=shard_count).to_iter_dataset()
    return PairBatchIterDataset(indices, positions, rows=rows, length=length, packing=packing)


def write_pairs_jsonl(path: str, records: Sequence[Mapping[str, Any]]) -> None:
    """Pair records as jsonl, atomically."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
    os.replace(tmp, path)
