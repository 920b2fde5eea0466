"""Samples follow the model's distribution; top-k / top-p never leave the nucleus; seeds."""

import numpy as np
import pytest
from scipy import stats

from jaxreason.sampling import Sampler, SamplingParams
from sampling_helpers import log_softmax, nucleus, spread_model

VOCAB = 16
PROMPT = [3, 7, 1]
N = 1000  # samples per prompt; every call has 4 prompts of <= 16 tokens (one compiled shape)


@pytest.fixture(scope="module")
def sampler():
    return Sampler(spread_model("llama-tiny", VOCAB, seed=1, logit_scale=6.0),
                   batch_buckets=(4,), prompt_buckets=(16,), new_token_buckets=(16,))


def next_token_logits(sampler, prefix: list[int]) -> np.ndarray:
    return np.asarray(sampler.model(np.array([prefix])))[0, -1]


def assert_frequencies_match(tokens: np.ndarray, logits: np.ndarray, temperature: float) -> None:
    """Chi-square goodness of fit of sampled tokens to softmax(logits / temperature)."""
    probs = np.exp(log_softmax(logits.astype(np.float64) / temperature))
    counts = np.bincount(tokens, minlength=VOCAB)
    expected = probs * len(tokens)
    # merge rare tokens into one cell so every expected count is >= 5
    rare = expected < 5
    observed = np.append(counts[~rare], counts[rare].sum())
    wanted = np.append(expected[~rare], expected[rare].sum())
    if wanted[-1] == 0:
        observed, wanted = observed[:-1], wanted[:-1]
    assert stats.chisquare(observed, wanted * observed.sum() / wanted.sum()).pvalue > 1e-3


@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_tempered_samples_follow_model_distribution(sampler, temperature):
    batch = sampler.generate_ids([PROMPT] * 4, SamplingParams(temperature=temperature, n=N,
                                                              max_new_tokens=2, seed=0))
    assert (batch.lengths == 2).all()
    first, second = batch.tokens[:, 0], batch.tokens[:, 1]
    assert_frequencies_match(first, next_token_logits(sampler, PROMPT), temperature)
    # the second token, given the most frequent first token
    top = np.bincount(first).argmax()
    assert_frequencies_match(second[first == top], next_token_logits(sampler, PROMPT + [top]),
                             temperature)


@pytest.mark.parametrize("top_k,top_p", [(3, 1.0), (0, 0.5), (4, 0.6)])
def test_top_k_top_p_never_emit_tokens_outside_the_nucleus(sampler, top_k, top_p):
    params = SamplingParams(temperature=0.8, top_k=top_k, top_p=top_p, n=N, max_new_tokens=3,
                            seed=1)
    batch = sampler.generate_ids([PROMPT] * 4, params)
    seen: dict[tuple[int, ...], set[int]] = {}
    for row in batch.tokens.tolist():
        for step in range(3):
            seen.setdefault(tuple(row[:step]), set()).add(row[step])
    for prefix, tokens in seen.items():
        keep = nucleus(next_token_logits(sampler, PROMPT + list(prefix)), 0.8, top_k, top_p)
        assert keep.sum() < VOCAB
        assert tokens <= set(np.flatnonzero(keep)), prefix
    # the first step's nucleus is fully used, in proportion
    keep = nucleus(next_token_logits(sampler, PROMPT), 0.8, top_k, top_p)
    assert seen[()] == set(np.flatnonzero(keep))
    logits = np.where(keep, next_token_logits(sampler, PROMPT), -np.inf)
    assert_frequencies_match(batch.tokens[:, 0], logits, 0.8)


def test_same_seed_reproduces_and_other_seed_differs(sampler):
    params = SamplingParams(temperature=1.0, n=N, max_new_tokens=12, seed=7)
    a = sampler.generate_ids([PROMPT, [5, 5]], params)
    b = sampler.generate_ids([PROMPT, [5, 5]], params)
    c = sampler.generate_ids([PROMPT, [5, 5]], SamplingParams(temperature=1.0, n=N,
                                                              max_new_tokens=12, seed=8))
    np.testing.assert_array_equal(a.tokens, b.tokens)
    np.testing.assert_array_equal(a.logprobs, b.logprobs)
    assert (a.tokens != c.tokens).mean() > 0.5
    assert len({tuple(r) for r in a.tokens[:N].tolist()}) > N // 2  # the n samples differ


def test_samples_of_a_prompt_do_not_depend_on_the_rest_of_the_batch(sampler):
    params = SamplingParams(temperature=1.0, n=N, max_new_tokens=12, seed=3)
    alone = sampler.generate_ids([PROMPT, [5, 5]], params)
    crowded = sampler.generate_ids([PROMPT, [9, 9, 2], list(range(16)), [1]], params)
    np.testing.assert_array_equal(alone.tokens[:N], crowded.tokens[:N])
    assert (alone.tokens[N:] != crowded.tokens[N:2 * N]).any()
