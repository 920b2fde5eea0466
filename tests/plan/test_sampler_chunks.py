"""A sampler with a per-device KV-cache budget splits a batch into sequential calls and
returns exactly the samples of one unchunked call; the cache size it budgets with is the size
of the cache the program really holds."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxreason import parallel
from jaxreason.model import create_model, preset_config
from jaxreason.model.kv_cache import KVCache, cache_bytes_per_device, sampling_cache_bytes
from jaxreason.parallel import make_mesh
from jaxreason.sampling import Sampler, SamplingParams
from jaxreason.sampling.sampler import prompts_within_budget

CONFIG = preset_config("llama-tiny", vocab_size=256, tie_word_embeddings=False)
PROMPTS = [[5, 9, 14, 3, 77, 31], [100, 4], list(range(20, 40)), [8], [60, 61, 62], [7, 7, 7],
           [200, 3, 9]]
SAMPLING = SamplingParams(temperature=1.0, n=4, max_new_tokens=24, seed=11,
                          stop_token_ids=(3,))


@pytest.fixture(scope="module")
def model():
    return create_model(CONFIG, seed=2, mesh=make_mesh(data=2, fsdp=2, tensor=2))


def _budget_for(model, prompts):
    """The per-device budget that holds exactly `prompts` prompts x n samples."""
    sampler = Sampler(model, prompt_buckets=(32,), new_token_buckets=(32,))
    return sampling_cache_bytes(CONFIG, sampler._batch_bucket(prompts, SAMPLING.n), SAMPLING.n,
                                32, 32, model.mesh)


def test_chunked_sampling_gives_the_unchunked_samples(model):
    whole = Sampler(model, prompt_buckets=(32,), new_token_buckets=(32,))
    chunked = Sampler(model, prompt_buckets=(32,), new_token_buckets=(32,),
                      max_kv_cache_bytes=_budget_for(model, 2))
    assert chunked.prompts_per_call(len(PROMPTS), SAMPLING.n, 32, 32) == 2  # 4 calls, last short
    calls = []
    run = chunked._run
    chunked._run = lambda *args: calls.append(args[2].prompts) or run(*args)
    a = whole.generate_ids(PROMPTS, SAMPLING)
    b = chunked.generate_ids(PROMPTS, SAMPLING)
    assert calls == [2, 2, 2, 2]  # one compiled shape; the last call is padded
    for field in ("tokens", "lengths", "finish_codes", "stop_index", "prompt_index",
                  "sample_index"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    np.testing.assert_allclose(a.raw_logprobs, b.raw_logprobs, atol=1e-5)
    np.testing.assert_allclose(a.logprobs, b.logprobs, atol=1e-5)
    # the draws really differ between prompts (a chunk reusing prompt indices would repeat them)
    assert len({tuple(t) for t in a.tokens.tolist()}) > len(PROMPTS)


def test_budget_picks_the_largest_power_of_two_that_fits(model):
    sampler = Sampler(model, prompt_buckets=(32,), new_token_buckets=(32,))
    pad = lambda p: sampler._batch_bucket(p, SAMPLING.n)  # noqa: E731
    for chunk in (1, 2, 4):
        budget = _budget_for(model, chunk)
        assert prompts_within_budget(CONFIG, 7, SAMPLING.n, 32, 32, budget, pad, model.mesh) == chunk
    assert prompts_within_budget(CONFIG, 7, SAMPLING.n, 32, 32, 10**12, pad, model.mesh) == 7
    with pytest.raises(ValueError, match="max_kv_cache_bytes"):
        prompts_within_budget(CONFIG, 7, SAMPLING.n, 32, 32, 100, pad, model.mesh)


@pytest.mark.parametrize("mesh_axes, per_layer", [((2, 2, 2), True), ((1, 4, 2), False),
                                                  ((1, 8, 1), True)])
def test_cache_bytes_are_what_a_device_holds(mesh_axes, per_layer):
    """The closed form against the shards of a real (tiny) cache laid out by `constrained`."""
    mesh = make_mesh(*mesh_axes)
    rows, length = 16, 48

    def make():
        return KVCache.create(CONFIG, rows, length, per_layer=per_layer).constrained()

    with jax.set_mesh(mesh), parallel.logical_rules(parallel.DEFAULT_RULES):
        cache = jax.jit(make)()
    device = jax.devices()[0]
    held = sum(s.data.nbytes for leaf in jax.tree.leaves((cache.k, cache.v, cache.valid))
               for s in leaf.addressable_shards if s.device == device)
    assert held == cache_bytes_per_device(CONFIG, rows, length, mesh)
    whole = 2 * CONFIG.num_layers * rows * CONFIG.num_kv_heads * length * CONFIG.head_dim * 4
    assert held < whole  # really split
    assert cache.k[0].dtype == jnp.float32 if per_layer else cache.k.dtype == jnp.float32


def test_shared_prefix_cache_bytes_are_what_a_device_holds():
    """n samples per prompt: the prompts' shared prefix plus the rows' own new-token slots."""
    mesh = make_mesh(2, 2, 2)
    prompts, n, prompt_length, new_tokens = 8, 4, 40, 24

    def make():
        cache = KVCache.create(CONFIG, prompts, prompt_length, per_layer=True).constrained()
        return cache.shared_prefix(n, new_tokens)

    with jax.set_mesh(mesh), parallel.logical_rules(parallel.DEFAULT_RULES):
        cache = jax.jit(make)()
    device = jax.devices()[0]
    arrays = (cache.k, cache.v, cache.valid, cache.prefix_k, cache.prefix_v, cache.prefix_valid)
    held = sum(s.data.nbytes for leaf in jax.tree.leaves(arrays)
               for s in leaf.addressable_shards if s.device == device)
    assert held == sampling_cache_bytes(CONFIG, prompts, n, prompt_length, new_tokens, mesh)
    assert held < cache_bytes_per_device(CONFIG, prompts * n, prompt_length + new_tokens, mesh)
