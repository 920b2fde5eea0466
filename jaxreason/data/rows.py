"""The one builder of training rows, for every objective: SFT examples, RL completions and
(later) preference pairs.

A sequence of n tokens with per-token loss weights gives n - 1 training positions:
`input_ids = tokens[:-1]`, `targets = tokens[1:]`, `loss_mask = weights[1:]` (float32),
`positions` restart at 0 in every sequence, `segment_ids` number the sequences of a row
(1, 2, ...; 0 = padding). Because the shift happens per sequence, packing several examples
into one row never asks a token to predict the first token of the next one.

- SFT: `pad_examples` (one example per row) or `pack_examples` / `FirstFit` (first-fit
  packing), both through `place`.
- RL: `completion_rows`, one row per sampled completion (prompt + completion, loss on the
  completion, per-row advantages, the sampler's log-probs at the loss positions). Rows of the
  same static length, so the train step compiles once per run.
- Preference pairs (DPO family; Bradley-Terry reward models): `pair_rows` writes a pair's
  chosen and rejected sequences side by side in one row (segments 2k - 1 and 2k of the
  row's k-th pair), several pairs per row with packing. Micro-batches take whole rows and shards split between rows, so the two
  sides of a pair always share a micro-batch and a data shard; a pair loss reads the segment
  sums (`losses.pair_sums`).
- Scored sequences (outcome / process reward models): `score_rows`, the loss mask on the
  positions whose prefix gets a score and `reward_labels` there.

Pure NumPy on the host, between the data source (or the sampler) and the train step.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

BATCH_FIELDS = ("input_ids", "targets", "positions", "segment_ids", "loss_mask")


def empty_rows(rows: int, length: int, pad_token_id: int = 0) -> dict[str, np.ndarray]:
    """All-padding rows: int32 token fields (ids = `pad_token_id`), float32 loss_mask."""
    batch = {name: np.zeros((rows, length), np.int32) for name in BATCH_FIELDS}
    batch["input_ids"][:] = pad_token_id
    batch["targets"][:] = pad_token_id
    batch["loss_mask"] = np.zeros((rows, length), np.float32)
    return batch


def place(batch: dict[str, np.ndarray], row: int, start: int, segment: int,
          example: Mapping[str, Any]) -> int:
    """Write one sequence (`tokens`, `loss_weights` of the same length) into `row` from
    `start` as segment `segment`; returns the end position."""
    tokens, weights = example["tokens"], example["loss_weights"]
    n = len(tokens) - 1
    end = start + n
    batch["input_ids"][row, start:end] = tokens[:-1]
    batch["targets"][row, start:end] = tokens[1:]
    batch["positions"][row, start:end] = np.arange(n)
    batch["segment_ids"][row, start:end] = segment
    batch["loss_mask"][row, start:end] = weights[1:]
    return end


# ----------------------------------------------------------------------------- SFT examples

def length_bucket(n: int, max_length: int, minimum: int = 16) -> int:
    """Smallest power of two >= n (at least `minimum`), capped at `max_length`."""
    bucket = minimum
    while bucket < n:
        bucket *= 2
    return min(bucket, max_length)


def pad_examples(examples: Sequence[Mapping[str, Any]], rows: int, length: int
                 ) -> dict[str, np.ndarray]:
    """One example per row (rows beyond the examples are all padding)."""
    batch = empty_rows(rows, length)
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
    return packed_rows(examples[:count], plan, rows, length), count


def packed_rows(examples: Sequence[Mapping[str, Any]], plan: FirstFit, rows: int,
                length: int) -> dict[str, np.ndarray]:
    """The rows of examples placed by `plan` (`plan.placements[i]` is example i's place)."""
    batch = empty_rows(rows, length)
    for example, (row, start, segment) in zip(examples, plan.placements):
        place(batch, row, start, segment, example)
    batch["example_ids"] = np.asarray([e["example_id"] for e in examples], np.int64)
    return batch


# ----------------------------------------------------------------------------- sequences

def sequence_rows(prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]], *,
                  length: int, pad_token_id: int, trainable: np.ndarray | None = None
                  ) -> dict[str, np.ndarray]:
    """One row per (prompt, completion) token-id pair, loss on the completion tokens
    (`trainable[i]` False: the tokens stay, loss_mask is all 0, so the row carries no
    gradient and counts in no normaliser)."""
    rows = len(completions)
    trainable = np.ones(rows, bool) if trainable is None else np.asarray(trainable, bool)
    batch = empty_rows(rows, length, pad_token_id)
    for r in range(rows):
        prompt, completion = list(prompts[r]), list(completions[r])
        tokens = prompt + completion
        if len(tokens) - 1 > length:
            raise ValueError(f"row {r}: prompt ({len(prompt)}) + completion ({len(completion)}) "
                             f"tokens exceed the row length {length} + 1; raise the prompt "
                             f"budget")
        weights = [False] * len(prompt) + [bool(trainable[r])] * len(completion)
        place(batch, r, 0, 1, {"tokens": np.asarray(tokens, np.int32),
                               "loss_weights": np.asarray(weights, bool)})
    return batch


def completion_rows(prompts: Sequence[Sequence[int]], completions: np.ndarray,
                    completion_lengths: np.ndarray, prompt_index: np.ndarray,
                    advantages: np.ndarray, *, length: int, pad_token_id: int,
                    trainable: np.ndarray | None = None,
                    sampler_logprobs: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Training rows of a batch of sampled completions (online RL).

    prompts: token ids of each prompt. completions: `[rows, max_new_tokens]` sampled tokens;
    completion_lengths: `[rows]`; prompt_index: `[rows]`, the prompt of each row; advantages:
    `[rows]`; trainable: `[rows]` bool (False: loss_mask all 0). sampler_logprobs: `[rows,
    max_new_tokens]`, the sampler's log-probs of the completion tokens, placed at the loss
    positions (to log the sampler-vs-trainer gap).

    Returns `[rows, length]` input_ids, targets, positions, segment_ids, loss_mask (float32),
    sampler_logprobs, and `advantages [rows]` float32.
    """
    rows = completions.shape[0]
    row_prompts = [prompts[int(prompt_index[r])] for r in range(rows)]
    lengths = [int(n) for n in completion_lengths]
    out = sequence_rows(row_prompts, [completions[r, :lengths[r]].tolist() for r in range(rows)],
                        length=length, pad_token_id=pad_token_id, trainable=trainable)
    out["sampler_logprobs"] = np.zeros((rows, length), np.float32)
    if sampler_logprobs is not None:
        for r in range(rows):
            start = len(row_prompts[r]) - 1
            out["sampler_logprobs"][r, start:start + lengths[r]] = sampler_logprobs[r, :lengths[r]]
    out["advantages"] = np.asarray(advantages, np.float32).reshape(rows)
    return out


# ----------------------------------------------------------------------------- preference pairs

def pair_positions(pair: Mapping[str, Any]) -> int:
    """Training positions of a pair in a row: its chosen and rejected sequences side by side."""
    return len(pair["chosen"]["tokens"]) - 1 + len(pair["rejected"]["tokens"]) - 1


def pair_rows(pairs: Sequence[Mapping[str, Any]], rows: int, length: int, *,
              placements: Sequence[tuple[int, int, int]] | None = None,
              ref_logps: np.ndarray | None = None, pad_token_id: int = 0
              ) -> dict[str, np.ndarray]:
    """Rows of preference pairs.

    pairs: `{"chosen": example, "rejected": example}` with examples as `place` takes them
    (`tokens`, `loss_weights` on the response). placements: `(row, start, k)` of each pair
    (`FirstFit` over `pair_positions`, k = the pair's 1-based slot in its row); None = one
    pair per row. Pair k of a row is written as segments 2k - 1 (chosen) and 2k (rejected),
    contiguously. ref_logps: `[pairs, 2]` summed reference log-probs of (chosen, rejected),
    stored in the `ref_logps` field at each sequence's first response position (so the
    segment sums of that field give them back); zeros when None.
    """
    if placements is None:
        if len(pairs) > rows:
            raise ValueError(f"{len(pairs)} pairs do not fit {rows} rows (one pair per row)")
        placements = [(r, 0, 1) for r in range(len(pairs))]
    batch = empty_rows(rows, length, pad_token_id)
    batch["ref_logps"] = np.zeros((rows, length), np.float32)
    for i, (pair, (row, start, k)) in enumerate(zip(pairs, placements)):
        if start + pair_positions(pair) > length:
            raise ValueError(f"pair {i} needs {pair_positions(pair)} positions from {start}; "
                             f"the row has {length}")
        for side, name in enumerate(("chosen", "rejected")):
            example = pair[name]
            first = start + int(np.argmax(np.asarray(example["loss_weights"])[1:]))
            start = place(batch, row, start, 2 * k - 1 + side, example)
            if ref_logps is not None:
                batch["ref_logps"][row, first] = ref_logps[i, side]
    return batch


# ----------------------------------------------------------------------------- scored sequences

def score_rows(examples: Sequence[Mapping[str, Any]], rows: int, length: int, *,
               placements: Sequence[tuple[int, int, int]] | None = None,
               pad_token_id: int = 0) -> dict[str, np.ndarray]:
    """Rows of sequences scored at some of their tokens (reward models: an outcome RM at a
    solution's last token, a process RM at each step's last token).

    examples: `tokens`, `loss_weights` and `labels` (float, same length) as
    `data.reward_data.scored_example` makes them: a weight (and label) at token j + 1 asks for
    the score of the prefix ending at token j, so after `place`'s shift `loss_mask` marks the
    input positions to score and `reward_labels` holds their labels. placements: `(row,
    start, segment)` of each example (`FirstFit`), None = one example per row.
    """
    if placements is None:
        if len(examples) > rows:
            raise ValueError(f"{len(examples)} examples do not fit {rows} rows (one per row)")
        placements = [(r, 0, 1) for r in range(len(examples))]
    batch = empty_rows(rows, length, pad_token_id)
    batch["reward_labels"] = np.zeros((rows, length), np.float32)
    for example, (row, start, segment) in zip(examples, placements):
        if start + len(example["tokens"]) - 1 > length:
            raise ValueError(f"an example of {len(example['tokens']) - 1} positions does not fit "
                             f"row {row} from {start} (length {length})")
        end = place(batch, row, start, segment, example)
        batch["reward_labels"][row, start:end] = np.asarray(example["labels"], np.float32)[1:]
    return batch
