"""The forward on a 2x2x2 (data, fsdp, tensor) mesh of 8 simulated devices equals one device."""

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

import jaxreason
from jaxreason import parallel
from hf_oracle import padded_batch, save_variant

pytestmark = pytest.mark.skipif(len(jax.devices()) < 8, reason="needs 8 (simulated) devices")


@pytest.mark.parametrize("variant", ["llama_untied", "qwen2_bias_tied"])
def test_forward_on_2x2x2_mesh_equals_single_device(tmp_path, variant):
    save_variant(variant, tmp_path)
    ids, mask = padded_batch()
    single = np.asarray(jaxreason.load_pretrained(tmp_path)(ids, attention_mask=mask))
    mesh = parallel.make_mesh(2, 2, 2)
    sharded_model = jaxreason.load_pretrained(tmp_path, mesh=mesh)
    sharded = sharded_model(ids, attention_mask=mask)
    assert len(sharded.sharding.device_set) == 8
    np.testing.assert_allclose(np.asarray(sharded), single, atol=1e-5)


def test_parameters_are_really_sharded_by_the_logical_rules(tmp_path):
    save_variant("llama_untied", tmp_path)
    mesh = parallel.make_mesh(2, 2, 2)
    params = jaxreason.load_pretrained(tmp_path, mesh=mesh).params
    assert params["embed"].sharding.spec == P("tensor", "fsdp")  # [vocab, embed]
    assert params["lm_head"].sharding.spec == P("fsdp", "tensor")  # [embed, vocab]
    assert params["layers"]["q"].sharding.spec == P(None, "fsdp", "tensor", None)
    assert params["layers"]["k"].sharding.spec == P(None, "fsdp", "tensor", None)
    assert params["layers"]["down"].sharding.spec == P(None, "tensor", "fsdp")
    q = params["layers"]["q"]  # [layers, embed=64, heads=4, head_dim=16]
    shard_shapes = {s.data.shape for s in q.addressable_shards}
    assert shard_shapes == {(2, 32, 2, 16)}
    assert params["final_norm"].sharding.is_fully_replicated


def test_indivisible_dimensions_fall_back_to_replication():
    mesh = parallel.make_mesh(1, 2, 4)
    # 2 kv heads cannot be split 4 ways: that dimension stays replicated, embed still on fsdp.
    spec = parallel.logical_to_spec(("layers", "embed", "kv_heads", "head_dim"), (2, 64, 2, 16), mesh)
    assert spec == P(None, "fsdp", None, None)
    mesh = parallel.make_mesh(2, 2, 2)
    # a batch of 6 splits over data (2) but not over data*fsdp (4)
    assert parallel.logical_to_spec(("batch", "length"), (6, 5), mesh) == P("data", None)
    assert parallel.logical_to_spec(("batch", "length"), (8, 5), mesh) == P(("data", "fsdp"), None)


def test_make_mesh_fills_minus_one_and_rejects_bad_sizes():
    mesh = parallel.make_mesh(data=2, fsdp=-1, tensor=2)
    assert dict(zip(mesh.axis_names, mesh.axis_sizes)) == {"data": 2, "fsdp": 2, "tensor": 2}
    with pytest.raises(ValueError, match="data\\*fsdp\\*tensor"):
        parallel.make_mesh(3, 1, 1)
    with pytest.raises(ValueError, match="at most one"):
        parallel.make_mesh(-1, -1, 1)


def test_random_init_is_created_sharded_and_matches_unsharded():
    config = jaxreason.model.preset_config("llama-tiny")
    mesh = parallel.make_mesh(2, 2, 2)
    sharded = jaxreason.create_model(config, seed=3, mesh=mesh)
    plain = jaxreason.create_model(config, seed=3)
    assert sharded.params["layers"]["gate"].sharding.spec == P(None, "fsdp", "tensor")
    for a, b in zip(jax.tree.leaves(sharded.params), jax.tree.leaves(plain.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_loading_on_a_mesh_reads_only_each_devices_shard(tmp_path, monkeypatch):
    """A 70B model must never be gathered whole on one host: each device's callback returns its
    own block, so sharded tensors are never materialized in full on the host."""
    save_variant("llama_untied", tmp_path)
    blocks = {}
    real = jax.make_array_from_callback

    def recording(shape, sharding, callback, *args, **kwargs):
        def wrapped(index):
            block = callback(index)
            blocks.setdefault(shape, []).append(block.shape)
            return block
        return real(shape, sharding, wrapped, *args, **kwargs)

    monkeypatch.setattr(jax, "make_array_from_callback", recording)
    mesh = parallel.make_mesh(1, 4, 2)
    params = jaxreason.load_pretrained(tmp_path, mesh=mesh).params
    up = params["layers"]["up"]  # [2 layers, 64 embed -> fsdp 4, 96 mlp -> tensor 2]
    assert set(blocks[up.shape]) == {(2, 16, 48)}
    embed = params["embed"]  # [128 vocab -> tensor 2, 64 embed -> fsdp 4]
    assert set(blocks[embed.shape]) == {(64, 16)}
