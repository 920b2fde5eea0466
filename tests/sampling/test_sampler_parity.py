"""Greedy decoding equals `transformers` `generate(do_sample=False)` token for token."""

import numpy as np
import pytest
import torch

import jaxreason
from jaxreason.sampling import Sampler, SamplingParams
from sampling_helpers import saved_pair

VOCAB = 256
NEW_TOKENS = 40
LENGTHS = (24, 17, 9, 1, 30)


def prompts(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.RandomState(seed)
    return [rng.randint(3, VOCAB, n) for n in LENGTHS]


def padded(rows: list[np.ndarray], left: bool) -> tuple[np.ndarray, np.ndarray]:
    width = max(map(len, rows))
    ids = np.full((len(rows), width), 7, np.int64)  # pad with a real token id: must not matter
    mask = np.zeros_like(ids)
    for i, r in enumerate(rows):
        span = slice(width - len(r), width) if left else slice(0, len(r))
        ids[i, span], mask[i, span] = r, 1
    return ids, mask


def hf_greedy(hf, rows: list[np.ndarray], eos: int | None) -> list[list[int]]:
    """transformers' greedy tokens per row (left-padded, as it expects), cut after EOS."""
    ids, mask = padded(rows, left=True)
    with torch.no_grad():
        out = hf.generate(torch.tensor(ids), attention_mask=torch.tensor(mask), do_sample=False,
                          max_new_tokens=NEW_TOKENS, eos_token_id=eos, pad_token_id=0)
    result = []
    for seq in out.numpy()[:, ids.shape[1]:].tolist():
        result.append(seq[:seq.index(eos) + 1] if eos is not None and eos in seq else seq)
    return result


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def pair(request, tmp_path_factory):
    """(transformers model, Sampler over the same weights, transformers' greedy tokens)."""
    hf, model = saved_pair(request.param, tmp_path_factory.mktemp(request.param), VOCAB)
    return hf, Sampler(model), hf_greedy(hf, prompts(), eos=None)


@pytest.mark.parametrize("left", [True, False], ids=["left_padded", "right_padded"])
def test_greedy_tokens_equal_transformers_generate_on_padded_batch(pair, left):
    _, sampler, expected = pair
    ids, mask = padded(prompts(), left)
    got = sampler.generate_ids(ids, SamplingParams(temperature=0, max_new_tokens=NEW_TOKENS,
                                                   ignore_eos=True), attention_mask=mask)
    assert got.tokens.shape == (len(LENGTHS), NEW_TOKENS)
    assert got.tokens.tolist() == expected
    assert (got.lengths == NEW_TOKENS).all() and got.finish_reasons == ["length"] * len(LENGTHS)
    np.testing.assert_array_equal(got.logprobs, 0.0)  # greedy: a point mass


def test_scanned_layers_decode_the_same_tokens(pair, tmp_path):
    """Models with `scan_layers` decode through `forward` instead of the split-layer step."""
    hf, sampler, expected = pair
    hf.save_pretrained(tmp_path)
    scanned = Sampler(jaxreason.load_pretrained(tmp_path, scan_layers=True))
    got = scanned.generate_ids([p.tolist() for p in prompts()],
                               SamplingParams(temperature=0, max_new_tokens=NEW_TOKENS,
                                              ignore_eos=True))
    assert got.tokens.tolist() == expected


def test_greedy_rows_stop_at_eos_like_transformers(pair):
    hf, sampler, free = pair
    eos = free[0][NEW_TOKENS // 3]  # a token that row 0 emits mid-way
    expected = hf_greedy(hf, prompts(), eos=eos)
    assert any(len(r) < NEW_TOKENS for r in expected)
    got = sampler.generate_ids([p.tolist() for p in prompts()],
                               SamplingParams(temperature=0, max_new_tokens=NEW_TOKENS,
                                              stop_token_ids=[eos], ignore_eos=True))
    for row, want in enumerate(expected):
        n = int(got.lengths[row])
        assert got.tokens[row, :n].tolist() == want
        assert (got.tokens[row, n:] == sampler.pad_token_id).all()
        assert (got.raw_logprobs[row, n:] == 0).all()
        assert got.finish_reasons[row] == ("stop" if want[-1] == eos else "length")
