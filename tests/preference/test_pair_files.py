"""Pair files: every bad pair is an error naming file, line and field (or, with
`skip_invalid`, skipped and counted); no response is ever truncated; batch plans keep whole
pairs in a row and restore exactly."""

import json

import numpy as np
import pytest

from jaxreason.data import pairs as pair_data
from jaxreason.tokenizer import train_bpe_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    texts = [f"Is {i} even or odd? Answer: even odd" for i in range(50)]
    return train_bpe_tokenizer(texts, 300)


def _write(tmp_path, lines, name="pairs.jsonl"):
    path = tmp_path / name
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return str(path)


LONG = " " + " ".join(str(i) for i in range(80))  # far more than 64 tokens
GOOD = {"prompt": "Is 4 even or odd? Answer:", "chosen": " even", "rejected": " odd"}


@pytest.mark.parametrize("bad,field,reason", [
    ({"prompt": "Is 4 even?", "chosen": " even"}, "rejected", "is missing"),
    ({"chosen": " even", "rejected": " odd"}, "prompt", "is missing"),
    ({**GOOD, "chosen": ""}, "chosen", "is empty"),
    ({**GOOD, "rejected": "   "}, "rejected", "is empty"),
    ({**GOOD, "prompt": "Is 4 even or odd? " * 20}, "prompt", "prompt budget"),
    ({**GOOD, "rejected": LONG}, "rejected", "never truncated"),
])
def test_bad_pair_names_file_line_and_field(tmp_path, tokenizer, bad, field, reason):
    path = _write(tmp_path, [GOOD, "", GOOD, bad, GOOD])  # the bad pair is on line 4
    fmt = pair_data.PairFormat(max_length=64, max_prompt_tokens=32)
    with pytest.raises(pair_data.PairError) as error:
        pair_data.load_pairs(path, tokenizer, fmt)
    message = str(error.value)
    assert f"{path}:4:" in message and f"field {field!r}" in message and reason in message


def test_skip_invalid_counts_each_reason(tmp_path, tokenizer):
    lines = [GOOD, {**GOOD, "chosen": ""}, {"prompt": "x", "chosen": " a"},
             {**GOOD, "prompt": "Is 4 even or odd? " * 20}, {**GOOD, "rejected": LONG},
             GOOD]
    fmt = pair_data.PairFormat(max_length=64, max_prompt_tokens=32, skip_invalid=True)
    pairs, skipped = pair_data.load_pairs(_write(tmp_path, lines), tokenizer, fmt)
    assert len(pairs) == 2 and [p["where"].rsplit(":", 1)[1] for p in pairs] == ["1", "6"]
    assert skipped == {"missing_field": 1, "empty_response": 1, "long_prompt": 1,
                       "too_long": 1}


def test_responses_are_never_truncated(tmp_path, tokenizer):
    """A pair that just fits is kept whole (EOS included); one position less is an error."""
    long = {**GOOD, "chosen": " even" * 10}
    path = _write(tmp_path, [long])
    fmt = pair_data.PairFormat(max_length=10_000)
    (pair,), _ = pair_data.load_pairs(path, tokenizer, fmt)
    chosen = pair["chosen"]
    response = tokenizer.encode(" even" * 10, add_special_tokens=False)
    assert list(chosen["tokens"][-len(response) - 1:-1]) == response
    assert chosen["tokens"][-1] == tokenizer.eos_token_id
    assert chosen["loss_weights"].sum() == len(response) + 1
    needed = pair_data.pair_positions(pair)
    pair_data.load_pairs(path, tokenizer, pair_data.PairFormat(max_length=needed))
    with pytest.raises(pair_data.PairError, match="never truncated"):
        pair_data.load_pairs(path, tokenizer, pair_data.PairFormat(max_length=needed - 1))


def test_truncated_responses_get_no_eos(tmp_path, tokenizer):
    path = _write(tmp_path, [{**GOOD, "rejected_truncated": True}])
    (pair,), _ = pair_data.load_pairs(path, tokenizer, pair_data.PairFormat())
    assert pair["chosen"]["tokens"][-1] == tokenizer.eos_token_id
    assert pair["rejected"]["tokens"][-1] != tokenizer.eos_token_id


def test_batch_plans_pack_whole_pairs_and_restore_exactly():
    rng = np.random.default_rng(0)
    positions = list(rng.integers(6, 30, 40))
    ds = pair_data.pair_batches(40, positions, rows=2, length=64, packing=True, seed=3,
                                shuffle=True, num_epochs=2)
    it = iter(ds)
    plans = [next(it) for _ in range(3)]
    state = it.get_state()
    rest = list(it)
    seen = [i for p in plans + rest for i in p["pair_ids"]]
    assert sorted(seen) == sorted(list(range(40)) * 2)  # every pair, once per epoch
    for plan in plans + rest:
        fill = {}
        for i, (row, start, k) in zip(plan["pair_ids"], plan["placements"]):
            assert start == fill.get(row, 0) and k == len([r for r, *_ in plan["placements"]
                                                          [:plan["pair_ids"].index(i) + 1]
                                                          if r == row])
            fill[row] = start + positions[i]
            assert fill[row] <= 64
    again = iter(ds)
    again.set_state(state)
    assert [p["pair_ids"] for p in again] == [p["pair_ids"] for p in rest]
