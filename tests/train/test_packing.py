"""Tokenization, padding and packing of SFT records; the packed loss equals the unpacked one."""

import jax
import numpy as np
import pytest

from jaxreason import losses
from jaxreason import prompting
from jaxreason.data import loader, rows, tokenize
from jaxreason.model import llama, preset_config
from jaxreason.tokenizer import train_bpe_tokenizer

TEXTS = [f"Q: what is {a} plus {b}? A: {a + b}." for a in range(30) for b in range(7)]


@pytest.fixture(scope="module")
def tokenizer():
    return train_bpe_tokenizer(TEXTS, 300)


def _records(n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a, b = (int(x) for x in rng.integers(0, 30, 2))
        out.append({"prompt": f"Q: what is {a} plus {b}?" + " and then" * int(rng.integers(0, 4)),
                    "completion": f" A: {a + b}."})
    return out


def test_completion_only_mask_covers_exactly_the_completion_and_eos(tokenizer):
    record = {"prompt": "Q: what is 3 plus 4?", "completion": " A: 7."}
    fmt = tokenize.ExampleFormat(max_length=64)
    example = tokenize.tokenize_record(record, tokenizer, fmt)
    prompt_ids = prompting.prompt_token_ids(record["prompt"], tokenizer, fmt.prompt_format)
    tokens, weights = example["tokens"], example["loss_weights"]
    assert tokens[0] == tokenizer.bos_token_id and tokens[-1] == tokenizer.eos_token_id
    assert list(tokens[: len(prompt_ids)]) == prompt_ids
    assert not weights[: len(prompt_ids)].any() and weights[len(prompt_ids):].all()
    assert tokenizer.decode(tokens[weights], skip_special_tokens=True) == " A: 7."
    all_tokens = tokenize.tokenize_record(
        record, tokenizer, tokenize.ExampleFormat(max_length=64, loss_on="all"))
    assert all_tokens["loss_weights"].all()  # ASTRO: every token is a target


def test_chat_records_use_the_template_and_mask_the_prompt_turn(tokenizer):
    record = {"prompt": [{"role": "user", "content": "what is 3 plus 4?"}], "completion": "7"}
    fmt = tokenize.ExampleFormat(chat=True, max_length=64)
    example = tokenize.tokenize_record(record, tokenizer, fmt)
    text = tokenizer.decode(example["tokens"])
    assert text.startswith("<|im_start|>user\nwhat is 3 plus 4?<|im_end|>\n<|im_start|>assistant\n")
    target = tokenizer.decode(example["tokens"][example["loss_weights"]])
    assert target == "7<|im_end|>\n<|eos|>"


def test_missing_field_names_the_field(tokenizer):
    with pytest.raises(tokenize.RecordError, match="no field 'completion'.*fields present"):
        tokenize.tokenize_record({"prompt": "x", "answer": "y"}, tokenizer,
                                 tokenize.ExampleFormat())


def test_first_fit_packing_keeps_examples_whole_and_restarts_positions(tokenizer):
    fmt = tokenize.ExampleFormat(max_length=40)
    examples = [tokenize.tokenize_record(r, tokenizer, fmt) for r in _records(30)]
    batch, count = rows.pack_examples(examples, rows=4, length=40)
    assert 4 < count < 30  # several examples per row, and the batch filled up
    placed = 0
    for row in range(4):
        segments = batch["segment_ids"][row]
        for s in range(1, segments.max() + 1):
            where = np.flatnonzero(segments == s)
            assert np.array_equal(where, np.arange(where[0], where[-1] + 1))  # contiguous
            assert np.array_equal(batch["positions"][row, where], np.arange(len(where)))
            placed += 1
    assert placed == count
    assert sorted(batch["example_ids"]) == sorted(e["example_id"] for e in examples[:count])
    assert np.all(batch["loss_mask"][batch["segment_ids"] == 0] == 0)


def test_packed_batch_loss_equals_loss_of_unpacked_examples(tokenizer):
    config = preset_config("llama-tiny", vocab_size=len(tokenizer))
    params = llama.init_params(config, jax.random.key(0), std=0.2)
    fmt = tokenize.ExampleFormat(max_length=48)
    examples = [tokenize.tokenize_record(r, tokenizer, fmt) for r in _records(12, seed=1)]
    packed, count = rows.pack_examples(examples, rows=3, length=48)
    assert count >= 5 and packed["segment_ids"].max() >= 2  # rows hold several examples
    unpacked = rows.pad_examples(examples[:count], rows=count, length=48)
    for averaging in ("token", "sequence"):
        a = losses.mean_loss(losses.sft_loss(params, config, packed, averaging=averaging,
                                             chunk_size=16))[0]
        b = losses.mean_loss(losses.sft_loss(params, config, unpacked, averaging=averaging,
                                             chunk_size=16))[0]
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=2e-6)


def test_padding_uses_a_power_of_two_bucket(tokenizer):
    fmt = tokenize.ExampleFormat(max_length=100)
    dataset = loader.sft_batch_dataset(_records(20), tokenizer, fmt, rows=4, packing=False,
                                         shuffle=False, num_epochs=1)
    batches = list(dataset)
    assert len(batches) == 5
    for batch in batches:
        longest = int((batch["segment_ids"] > 0).sum(axis=1).max())
        width = batch["input_ids"].shape[1]
        assert width == rows.length_bucket(longest, 100)
        assert width >= longest and width in (16, 32, 64) and (width == 16 or width < 2 * longest)


@pytest.mark.parametrize("packing", [True, False])
def test_restored_iterator_continues_with_exactly_the_same_batches(tokenizer, packing):
    fmt = tokenize.ExampleFormat(max_length=40)
    dataset = loader.sft_batch_dataset(_records(50), tokenizer, fmt, rows=3, packing=packing,
                                         seed=7, num_epochs=None)
    iterator = iter(dataset)
    for _ in range(5):
        next(iterator)
    state = iterator.get_state()
    expected = [next(iterator) for _ in range(20)]  # crosses epoch boundaries
    restored = iter(dataset)
    restored.set_state(state)
    for want in expected:
        got = next(restored)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])


def test_each_epoch_sees_every_record_once_in_a_new_order(tokenizer):
    fmt = tokenize.ExampleFormat(max_length=40)
    records = _records(24, seed=3)
    dataset = loader.sft_batch_dataset(records, tokenizer, fmt, rows=4, packing=False,
                                         seed=1, num_epochs=2)
    ids = np.concatenate([b["example_ids"] for b in dataset])
    first, second = ids[:24], ids[24:]
    expected = sorted(tokenize.record_id(r) for r in records)
    assert sorted(first) == expected and sorted(second) == expected
    assert list(first) != list(second)


def test_long_examples_are_truncated_and_counted(tokenizer):
    fmt = tokenize.ExampleFormat(max_length=8, loss_on="all")
    dataset = loader.sft_batch_dataset(_records(6), tokenizer, fmt, rows=2, packing=True,
                                         shuffle=False, num_epochs=1)
    batches = list(dataset)
    assert all(b["input_ids"].shape == (2, 8) for b in batches)
    assert sum(int(b["num_truncated"]) for b in batches) == 6


def test_examples_left_without_loss_tokens_are_skipped_and_counted(tokenizer):
    records = _records(6) + [{"prompt": "Q: 1 plus 1?", "completion": " A: 2."}]
    fmt = tokenize.ExampleFormat(max_length=8)  # long prompts leave no completion token
    dataset = loader.sft_batch_dataset(records, tokenizer, fmt, rows=2, packing=True,
                                         shuffle=False, num_epochs=1)
    batches = list(dataset)
    kept = sum(len(b["example_ids"]) for b in batches)
    skipped = sum(int(b["num_skipped"]) for b in batches)
    assert kept >= 1 and kept + skipped == 7
    assert all(b["loss_mask"].sum() > 0 for b in batches)


def test_data_whose_prompts_fill_the_budget_is_a_clear_error_not_a_recursion():
    """Every example truncated to no loss token: one error naming data.max_length."""
    import pytest

    from jaxreason.data.loader import BatchIterDataset
    import grain

    examples = [{"tokens": np.arange(9, dtype=np.int32), "loss_weights": np.zeros(9, bool),
                 "example_id": i, "truncated": True} for i in range(3000)]
    dataset = BatchIterDataset(grain.MapDataset.source(examples).to_iter_dataset(), rows=2,
                               max_length=8, packing=True)
    with pytest.raises(ValueError, match="data.max_length"):
        next(iter(dataset))
