"""The sampler on a 2x2x2 mesh of 8 simulated devices gives the single-device tokens."""

import jax
import numpy as np
import pytest

from jaxreason.model import create_model, preset_config
from jaxreason.parallel import make_mesh
from jaxreason.sampling import Sampler, SamplingParams

PROMPTS = [[5, 9, 14, 3, 77, 31], [100, 4], list(range(20, 40)), [8], [60, 61, 62]]
CONFIG = preset_config("llama-tiny", vocab_size=256, tie_word_embeddings=False)


@pytest.fixture(scope="module")
def samplers():
    assert jax.device_count() == 8, "tests/conftest.py simulates 8 CPU devices"
    single = create_model(CONFIG, seed=4)
    sharded = create_model(CONFIG, seed=4, mesh=make_mesh(data=2, fsdp=2, tensor=2))
    for a, b in zip(jax.tree.leaves(single.params), jax.tree.leaves(sharded.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not sharded.params["layers"]["q"].sharding.is_fully_replicated
    return Sampler(single), Sampler(sharded)


def test_greedy_tokens_on_eight_devices_equal_single_device(samplers):
    single, sharded = samplers
    params = SamplingParams(temperature=0, max_new_tokens=32, ignore_eos=True)
    a = single.generate_ids(PROMPTS, params)
    b = sharded.generate_ids(PROMPTS, params)
    np.testing.assert_array_equal(a.tokens, b.tokens)
    np.testing.assert_allclose(a.raw_logprobs, b.raw_logprobs, atol=1e-5)


def test_sampled_tokens_on_eight_devices_equal_single_device(samplers):
    single, sharded = samplers
    params = SamplingParams(temperature=0.9, n=2, max_new_tokens=16, seed=2)
    a = single.generate_ids(PROMPTS, params)
    b = sharded.generate_ids(PROMPTS, params)
    np.testing.assert_array_equal(a.tokens, b.tokens)
    np.testing.assert_allclose(a.logprobs, b.logprobs, atol=1e-5)


def test_batch_is_split_over_data_and_fsdp_axes(samplers):
    _, sharded = samplers
    from jaxreason.sampling.engine import ProgramShape
    shape = ProgramShape(prompts=8, n=1, prompt_length=32, new_tokens=16, greedy=True,
                         truncates=False)
    inputs = sharded._inputs(PROMPTS, SamplingParams(temperature=0), shape)
    assert inputs.prompt_ids.sharding.spec[0] == ("data", "fsdp")
    assert sharded._batch_bucket(3, 1) == 4  # 3 prompts -> 4 rows: split over 4 batch shards
    assert sharded._batch_bucket(1, 2) == 2  # 1 prompt x 2 samples -> 4 rows
