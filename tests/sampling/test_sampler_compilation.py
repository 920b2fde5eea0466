"""Bucketed shapes: few compiled programs; new parameters and settings never recompile."""

import logging

import numpy as np
import pytest

from jaxreason.model import create_model, preset_config
from jaxreason.sampling import Sampler, SamplingParams

CONFIG = preset_config("llama-tiny", vocab_size=128)


@pytest.fixture(scope="module")
def sampler():
    return Sampler(create_model(CONFIG, seed=0), prompt_buckets=(8, 16),
                   new_token_buckets=(16, 32), batch_buckets=(4, 8))


def compilations(caplog) -> int:
    return sum("compiled a generate program" in r.getMessage() for r in caplog.records)


def test_calls_within_one_bucket_share_one_program(sampler, caplog):
    caplog.set_level(logging.INFO, logger="jaxreason.sampling")
    calls = [
        ([[1, 2, 3] * 3], SamplingParams(temperature=0.7, max_new_tokens=20, seed=0)),
        ([list(range(1, 11)), [4]], SamplingParams(temperature=1.2, max_new_tokens=32, seed=5)),
        ([[9] * 16, [1], [2], [3]], SamplingParams(temperature=0.3, max_new_tokens=17, seed=9,
                                                   stop_token_ids=[3, 4])),
    ]
    size = sampler._program._cache_size()
    outputs = [sampler.generate_ids(p, s) for p, s in calls]
    assert compilations(caplog) == 1
    assert sampler._program._cache_size() == size + 1
    assert [o.tokens.shape for o in outputs] == [(1, 20), (2, 32), (4, 17)]


def test_new_parameters_are_used_without_recompiling(sampler, caplog):
    caplog.set_level(logging.INFO, logger="jaxreason.sampling")
    params = SamplingParams(temperature=0, max_new_tokens=16, ignore_eos=True)
    before = sampler.generate_ids([[1, 2, 3]], params)
    size = sampler._program._cache_size()
    other = create_model(CONFIG, seed=1).params
    with_other = sampler.generate_ids([[1, 2, 3]], params, params=other)
    old = sampler.params
    sampler.update_params(other)
    updated = sampler.generate_ids([[1, 2, 3]], params)
    sampler.update_params(old)
    assert np.abs(with_other.raw_logprobs - before.raw_logprobs).max() > 1e-3
    np.testing.assert_array_equal(updated.raw_logprobs, with_other.raw_logprobs)
    assert sampler._program._cache_size() == size
    again = sampler.generate_ids([[1, 2, 3]], params)
    np.testing.assert_array_equal(again.raw_logprobs, before.raw_logprobs)
    # a second sampler over a same-shaped model reuses the compiled program
    twin = Sampler(create_model(CONFIG, seed=2), prompt_buckets=(8, 16),
                   new_token_buckets=(16, 32), batch_buckets=(4, 8))
    logged = compilations(caplog)
    twin.generate_ids([[1, 2, 3]], params)
    assert sampler._program._cache_size() == size and compilations(caplog) == logged


def test_inputs_beyond_buckets_or_vocabulary_are_clear_errors(sampler):
    with pytest.raises(ValueError, match="max_new_tokens 33 exceeds the largest bucket 32"):
        sampler.generate_ids([[1, 2]], SamplingParams(max_new_tokens=33))
    with pytest.raises(ValueError, match="prompt length 17 exceeds the largest bucket 16"):
        sampler.generate_ids([[1] * 17], SamplingParams(max_new_tokens=8))
    with pytest.raises(ValueError, match=r"prompt 1: token ids \[128\] are outside"):
        sampler.generate_ids([[1], [128]])
    with pytest.raises(ValueError, match="must be a list of prompts"):
        sampler.generate_ids([1, 2, 3])
    with pytest.raises(ValueError, match="prompt 0 has no tokens"):
        sampler.generate_ids([[]])
    with pytest.raises(ValueError, match="need a tokenizer"):
        sampler.generate(["hello"])
    with pytest.raises(ValueError, match="top_p must be in"):
        SamplingParams(top_p=0.0)


def test_n_samples_per_prompt_prefill_each_prompt_once(monkeypatch):
    """With n > 1 the prompt rows are prefilled once (the cache is repeated), not n times:
    the forward calls traced into the program see `prompts` prefill rows and `prompts * n`
    decode rows."""
    import jax

    from jaxreason.sampling import engine

    calls = []
    real_forward = engine.forward

    def spy(params, config, input_ids, *args, **kwargs):
        calls.append(tuple(input_ids.shape))
        return real_forward(params, config, input_ids, *args, **kwargs)

    monkeypatch.setattr(engine, "forward", spy)
    monkeypatch.setattr("jaxreason.sampling.sampler._PROGRAM",
                        jax.jit(engine.generate_program, static_argnums=(1, 2, 3)))
    config = preset_config("llama-tiny", vocab_size=96)  # a shape no other test compiles
    sampler = Sampler(create_model(config, seed=0), prompt_buckets=(8,),
                      new_token_buckets=(16,), batch_buckets=(2,))
    out = sampler.generate_ids([[1, 2, 3], [4, 5]], SamplingParams(n=5, max_new_tokens=16))
    assert out.tokens.shape == (10, 16)
    prefill = [c for c in calls if c[1] > 1]
    decode = [c for c in calls if c[1] == 1]
    assert prefill == [(2, 8)]  # 2 prompts, prompt bucket 8: once, not 10 rows
    assert decode and all(c == (10, 1) for c in decode)
