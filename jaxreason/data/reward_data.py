"""Reward-model data: outcome (ORM), preference (Bradley-Terry) and process (PRM) records ->
scored examples for `data.rows.score_rows` / `data.rows.pair_rows`.

Every reward model here scores a prefix at its last token: a solution is the prompt followed
by steps, and the score of step j is the scalar head's value at the last token of step j (an
ORM has one step, the whole completion). Training and scoring tokenize the same way,
`scored_tokens`: the prompt rendered as for SFT and sampling (`prompting.prompt_token_ids`),
then each step's text encoded on its own and appended, which is how MCTS and step beam search
build their prefixes (a step's tokens follow the previous step's).

Record kinds (`reward_model.kind`):

- `orm`: `{prompt, completion, correct}` (the `sample` stage's `samples.jsonl`; a float
  `label` in [0, 1] overrides `correct`), one score per full solution, label = correct.
- `bt`: `{prompt, chosen, rejected}` (the `pairs` stage's `pairs.jsonl`, the DPO pair file):
  one score per response; the loss compares the two.
- `prm`: `{prompt, steps: [texts], labels: [floats in [0, 1]]}` (the `prm_labels` stage's
  `steps.jsonl`), one score per step.

A malformed record is a `RewardDataError` naming the file, the line and the field; a record
longer than a row (`max_length` positions) is skipped and counted (a PRM record keeps the steps
that fit instead).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np

from jaxreason.data.rows import pair_positions
from jaxreason.data.tokenize import RecordError, record_id
from jaxreason.prompting import PromptFormat, encode, prompt_token_ids

KINDS = ("orm", "bt", "prm")


class RewardDataError(RecordError):
    """A reward-model record that cannot be trained on (names file, line and field)."""


@dataclasses.dataclass(frozen=True)
class RewardFormat:
    """chat / add_bos: the prompt rendering (as for SFT); max_length: positions of a row."""

    chat: bool = False
    add_bos: bool = True
    max_length: int = 1024

    @property
    def prompt_format(self) -> PromptFormat:
        return PromptFormat(chat=self.chat, add_bos=self.add_bos)


def scored_tokens(prompt_ids: Sequence[int], steps: Sequence[str], tokenizer: Any
                  ) -> tuple[list[int], list[int]]:
    """(prompt + step tokens, the index of each step's last token). A step that encodes to no
    token is scored where the previous one was."""
    tokens = [int(t) for t in prompt_ids]
    ends = []
    for step in steps:
        tokens.extend(encode(tokenizer, step))
        ends.append(len(tokens) - 1)
    return tokens, ends


def scored_example(prompt_ids: Sequence[int], steps: Sequence[str], labels: Sequence[float],
                   tokenizer: Any, max_length: int) -> dict[str, Any] | None:
    """`{tokens, loss_weights, labels, num_steps}` for `rows.score_rows`, or None when not even
    the first step fits `max_length` positions. One filler token is appended so that the last
    token is an input; the weight and label of a step sit on the token after its last one
    (see `score_rows`). Steps past the row are dropped."""
    tokens, ends = scored_tokens(prompt_ids, steps, tokenizer)
    keep = [j for j, end in enumerate(ends) if 0 <= end < max_length]  # ends never decrease
    if not keep:
        return None
    last = ends[keep[-1]]
    tokens = np.asarray(tokens[: last + 1] + [0], np.int32)
    weights = np.zeros(len(tokens), bool)
    values = np.zeros(len(tokens), np.float32)
    for j in keep:
        weights[ends[j] + 1] = True
        values[ends[j] + 1] = float(labels[j])
    return {"tokens": tokens, "loss_weights": weights, "labels": values, "num_steps": len(keep)}


def _field(record: Any, name: str, where: str) -> Any:
    if not isinstance(record, Mapping):
        raise RewardDataError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if name not in record or record[name] is None:
        raise RewardDataError(f"{where}: field {name!r} is missing (fields present: "
                              f"{sorted(record)})")
    return record[name]


def _text(record: Any, name: str, where: str) -> str:
    value = _field(record, name, where)
    if not isinstance(value, str) or not value.strip():
        raise RewardDataError(f"{where}: field {name!r} must be a non-empty string")
    return value


def record_steps(record: Any, kind: str, where: str) -> list[tuple[list[str], list[float]]]:
    """The (steps, labels) sequences of one record: one for orm / prm, (chosen, rejected)
    for bt."""
    if kind == "orm":
        completion = _text(record, "completion", where)
        if "label" in record and record["label"] is not None:
            label = record["label"]
            if not isinstance(label, (int, float)) or not 0.0 <= float(label) <= 1.0:
                raise RewardDataError(f"{where}: field 'label' must be a number in [0, 1]")
        else:
            label = _field(record, "correct", where)
            if not isinstance(label, bool):
                raise RewardDataError(f"{where}: field 'correct' must be true or false")
        return [([completion], [float(label)])]
    if kind == "bt":
        return [([_text(record, "chosen", where)], [1.0]),
                ([_text(record, "rejected", where)], [0.0])]
    if kind == "prm":
        steps, labels = _field(record, "steps", where), _field(record, "labels", where)
        if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
            raise RewardDataError(f"{where}: field 'steps' must be a non-empty list of strings")
        if (not isinstance(labels, list) or len(labels) != len(steps)
                or not all(isinstance(x, (int, float)) and 0.0 <= x <= 1.0 for x in labels)):
            raise RewardDataError(f"{where}: field 'labels' must be one number in [0, 1] per "
                                  f"step ({len(steps)} steps)")
        return [(list(steps), [float(x) for x in labels])]
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def load_reward_items(path: str, kind: str, tokenizer: Any, fmt: RewardFormat
                      ) -> tuple[list[dict[str, Any]], int]:
    """(items, records skipped as too long). An item is a scored example (orm, prm) or
    `{"chosen", "rejected"}` of two (bt), each with `example_id` and `where`."""
    from jaxreason.data.pairs import read_pair_records

    items, skipped = [], 0
    for where, record in read_pair_records(path):
        sequences = record_steps(record, kind, where)
        prompt = _field(record, "prompt", where)
        try:
            prompt_ids = prompt_token_ids(prompt, tokenizer, fmt.prompt_format)
        except RecordError as e:
            raise RewardDataError(f"{where}: field 'prompt': {e}") from None
        examples = [scored_example(prompt_ids, steps, labels, tokenizer, fmt.max_length)
                    for steps, labels in sequences]
        if any(e is None for e in examples):
            skipped += 1
            continue
        if kind == "bt":
            item = {"chosen": examples[0], "rejected": examples[1]}
            if pair_positions(item) > fmt.max_length:
                skipped += 1
                continue
        else:
            item = examples[0]
        item.update(example_id=record_id(record), where=where)
        items.append(item)
    if not items:
        raise RewardDataError(f"{path}: no trainable {kind} records ({skipped} too long for "
                              f"data.max_length={fmt.max_length})")
    return items, skipped


def item_positions(item: Mapping[str, Any]) -> int:
    """Training positions an item takes in a row."""
    if "chosen" in item:
        return pair_positions(item)
    return len(item["tokens"]) - 1


def reward_texts(path: str, kind: str, limit: int = 20000) -> list[str]:
    """Prompt + solution texts of the first records (to train a tiny tokenizer on)."""
    from jaxreason.data.pairs import read_pair_records

    texts = []
    for where, record in read_pair_records(path)[:limit]:
        prompt = record.get("prompt", "") if isinstance(record, Mapping) else ""
        if isinstance(prompt, list):
            prompt = "\n".join(str(m.get("content", "")) for m in prompt)
        for steps, _ in record_steps(record, kind, where):
            texts.append(f"{prompt}{''.join(steps)}")
    return texts
