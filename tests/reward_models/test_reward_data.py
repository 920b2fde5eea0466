"""Reward-model records -> scored examples -> rows: the scored positions are each step's last
token, labels sit there, and bad records name file, line and field."""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import rm_toys  # noqa: E402

from jaxreason.data.reward_data import (RewardDataError, RewardFormat,  # noqa: E402
                                        item_positions, load_reward_items, scored_example,
                                        scored_tokens)
from jaxreason.data.rows import score_rows  # noqa: E402


class CharTokenizer:
    """One token per character (ids 3 + ord), BOS 1."""

    bos_token_id, eos_token_id, pad_token_id = 1, 2, 0

    def encode(self, text, add_special_tokens=False):
        return [3 + ord(ch) % 200 for ch in text]


def test_scored_positions_are_the_last_token_of_each_step_with_its_label():
    tok = CharTokenizer()
    prompt = [1, 50, 51]
    steps, labels = ["ab\n", "c\n", "dd"], [0.25, 1.0, 0.0]
    tokens, ends = scored_tokens(prompt, steps, tok)
    assert ends == [5, 7, 9] and tokens[:3] == prompt
    example = scored_example(prompt, steps, labels, tok, max_length=32)
    batch = score_rows([example], 2, 16)
    scored = np.nonzero(batch["loss_mask"][0])[0]
    assert scored.tolist() == ends
    assert batch["input_ids"][0, scored].tolist() == [tokens[e] for e in ends]
    assert batch["reward_labels"][0, scored].tolist() == labels
    assert batch["segment_ids"][0, :10].tolist() == [1] * 10 and batch["segment_ids"][1].sum() == 0


def test_steps_past_the_row_are_dropped_and_nothing_fitting_gives_none():
    tok = CharTokenizer()
    example = scored_example([1], ["aaaa", "bbbb", "cccc"], [1.0, 0.0, 1.0], tok, max_length=9)
    assert example["num_steps"] == 2 and len(example["tokens"]) - 1 <= 9
    assert scored_example([1] * 10, ["a"], [1.0], tok, max_length=8) is None


def test_records_of_each_kind_load_and_bad_records_name_file_line_and_field(tmp_path):
    tok = CharTokenizer()
    fmt = RewardFormat(max_length=64)
    for kind, make in (("prm", rm_toys.prm_records), ("orm", rm_toys.orm_records),
                       ("bt", rm_toys.bt_records)):
        path = rm_toys.write_jsonl(tmp_path / f"{kind}.jsonl", make(6))
        items, skipped = load_reward_items(str(path), kind, tok, fmt)
        assert len(items) == 6 and skipped == 0
        assert all(item_positions(i) > 0 for i in items)
    pairs = load_reward_items(str(tmp_path / "bt.jsonl"), "bt", tok, fmt)[0]
    assert set(pairs[0]) >= {"chosen", "rejected", "example_id", "where"}
    bad = rm_toys.write_jsonl(tmp_path / "bad.jsonl", [
        {"prompt": "Pick a:", "steps": ["a\n"], "labels": [1.0]},
        {"prompt": "Pick a:", "steps": ["a\n", "b\n"], "labels": [1.0]}])
    with pytest.raises(RewardDataError, match=r"bad.jsonl:2: field 'labels'"):
        load_reward_items(str(bad), "prm", tok, fmt)
    bad = rm_toys.write_jsonl(tmp_path / "bad_orm.jsonl", [{"prompt": "x", "completion": "y"}])
    with pytest.raises(RewardDataError, match=r"bad_orm.jsonl:1: field 'correct' is missing"):
        load_reward_items(str(bad), "orm", tok, fmt)
    long = rm_toys.write_jsonl(tmp_path / "long.jsonl", [
        {"prompt": "x", "chosen": "y" * 100, "rejected": "z"},
        {"prompt": "x", "chosen": "y", "rejected": "z"}])
    items, skipped = load_reward_items(str(long), "bt", tok, fmt)
    assert len(items) == 1 and skipped == 1
