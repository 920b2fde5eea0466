"""Log-probs the sampler returns equal those of a separate full-sequence forward pass."""

import numpy as np
import pytest

from jaxreason.sampling import Sampler, SamplingParams
from sampling_helpers import log_softmax, nucleus, spread_model

PROMPTS = [[5, 9, 14, 3, 77, 31], [100, 4], [8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 60]]


@pytest.fixture(scope="module")
def sampler():
    return Sampler(spread_model("qwen2-tiny", vocab_size=128, seed=3))


def full_forward_logits(sampler, prompt: list[int], completion: list[int]) -> np.ndarray:
    """Logits `[len(completion), vocab]` predicting each completion token, from one forward."""
    seq = np.array([prompt + completion])
    logits = np.asarray(sampler.model(seq))[0]
    return logits[len(prompt) - 1: len(prompt) + len(completion) - 1]


@pytest.mark.parametrize("settings", [
    dict(temperature=0.7, top_k=20, top_p=0.8),
    dict(temperature=1.3),
    dict(temperature=0.0),
], ids=["temp0.7_topk20_topp0.8", "temp1.3", "greedy"])
def test_logprobs_equal_full_sequence_forward(sampler, settings):
    params = SamplingParams(max_new_tokens=24, n=2, seed=11, **settings)
    batch = sampler.generate_ids(PROMPTS, params)
    assert batch.tokens.shape == (len(PROMPTS) * 2, 24)
    for row in range(batch.tokens.shape[0]):
        n = int(batch.lengths[row])
        completion = batch.tokens[row, :n].tolist()
        logits = full_forward_logits(sampler, PROMPTS[batch.prompt_index[row]], completion)
        steps = np.arange(n)
        raw = log_softmax(logits)[steps, completion]
        np.testing.assert_allclose(batch.raw_logprobs[row, :n], raw, atol=1e-4)
        if params.greedy:
            expected = np.zeros(n)
        else:
            expected = []
            for step, token in enumerate(completion):
                keep = nucleus(logits[step], params.temperature, params.top_k, params.top_p)
                scaled = np.where(keep, logits[step] / params.temperature, -np.inf)
                expected.append(log_softmax(scaled)[token])
        np.testing.assert_allclose(batch.logprobs[row, :n], expected, atol=1e-4)


def test_generate_results_carry_the_same_logprobs_as_the_array_api(sampler):
    params = SamplingParams(max_new_tokens=10, temperature=0.9, seed=5, n=2)
    results = sampler.generate(PROMPTS, params)
    batch = sampler.generate_ids(PROMPTS, params)
    assert len(results) == len(PROMPTS) * 2
    assert [(r.prompt_index, r.sample_index) for r in results] == [
        (p, s) for p in range(len(PROMPTS)) for s in range(2)]
    for row, r in enumerate(results):
        assert r.token_ids == batch.tokens[row, :batch.lengths[row]].tolist()
        np.testing.assert_allclose(r.logprobs, batch.logprobs[row, :batch.lengths[row]])
        np.testing.assert_allclose(r.cumulative_logprob, batch.logprobs[row].sum(), rtol=1e-5)
        assert r.prompt_token_ids == PROMPTS[r.prompt_index]
