"""Training a LoRA model with the one train step: the 2x2x2-mesh step equals the one-device
step; only adapters move (the base is bit-identical afterwards) and only they have optimizer
state; a tiny LoRA SFT run lowers the loss; checkpoints hold the adapters alone and restore
onto the base; bad `model.lora` values are errors naming the key."""

import functools

import jax
import numpy as np
import pytest
from ml_collections import ConfigDict

from jaxreason import losses, parallel
from jaxreason.model import lora, preset_config
from jaxreason.train import state as train_state
from jaxreason.train.build import lora_config
from jaxreason.train.checkpoint import Checkpointer
from jaxreason.train.errors import ConfigError
from jaxreason.train.optim import make_optimizer
from jaxreason.train.step import make_train_step
from jaxreason.train.trainable import trainable

CONFIG = preset_config("llama-tiny", vocab_size=256).replace(
    lora=lora.LoraConfig(rank=4, alpha=8.0))


class _Optim:  # the `config.optim` fields make_optimizer reads
    learning_rate, schedule, warmup_steps, final_lr_ratio = 1e-2, "constant", 0, 0.0
    weight_decay, b1, b2, eps, grad_clip = 0.01, 0.9, 0.95, 1e-8, 1.0


def _batch(rows=16, length=16, seed=0):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, CONFIG.vocab_size, (rows, length + 1))
    return {"input_ids": tokens[:, :-1].astype(np.int32),
            "targets": tokens[:, 1:].astype(np.int32),
            "positions": np.tile(np.arange(length), (rows, 1)).astype(np.int32),
            "segment_ids": np.ones((rows, length), np.int32),
            "loss_mask": (rng.random((rows, length)) > 0.3).astype(np.float32)}


def _train(mesh, steps, config=CONFIG, keep_after=2):
    """(initial parameters, state after `keep_after` updates (host copy), losses, metrics)
    of `steps` updates on one fixed batch."""
    optimizer, schedule = make_optimizer(_Optim, total_steps=steps)
    shardings = train_state.state_shardings(config, optimizer, mesh)
    state = train_state.init_state(config, optimizer, mesh, seed=3)
    initial = jax.tree.map(np.asarray, parallel.to_host(state.params))
    loss = functools.partial(losses.sft_loss, config=config, chunk_size=8)
    step = make_train_step(lambda p, b: loss(p, batch=b), optimizer, schedule, mesh=mesh,
                           state_shardings=shardings)
    batch = parallel.host_local_to_global(_batch(), mesh)
    history, kept = [], None
    for n in range(steps):
        state, metrics = step(state, batch)
        history.append(metrics)
        if n + 1 == keep_after:
            kept = jax.tree.map(lambda x: x.copy(), state)
    return initial, kept, [float(m["loss"]) for m in history], history


def _host(tree):
    return jax.tree.map(np.asarray, parallel.to_host(tree))


@pytest.fixture(scope="module")
def one_device():
    return _train(parallel.make_mesh(devices=jax.devices()[:1]), steps=20)


def test_lora_step_on_2x2x2_mesh_equals_one_device(one_device):
    _, ref_state, ref_losses, ref_metrics = one_device
    _, state, step_losses, metrics = _train(parallel.make_mesh(data=2, fsdp=2, tensor=2), 2)
    np.testing.assert_allclose(step_losses, ref_losses[:2], atol=1e-5)
    assert float(metrics[1]["grad_norm"]) == pytest.approx(
        float(ref_metrics[1]["grad_norm"]), abs=1e-5)
    for a, b in zip(jax.tree.leaves(_host(state)), jax.tree.leaves(_host(ref_state))):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    b_q = state.params["layers"]["lora"]["q"]["b"]  # [layers, rank, heads, head_dim]
    assert not b_q.sharding.is_fully_replicated  # adapters follow the heads' rule (tensor)


def test_only_adapters_train_and_hold_optimizer_state(one_device):
    initial, state, _, _ = one_device
    final = jax.tree.map(np.asarray, parallel.to_host(state.params))
    base0, adapters0 = lora.split(initial)
    base1, adapters1 = lora.split(final)
    for a, b in zip(jax.tree.leaves(base0), jax.tree.leaves(base1)):
        np.testing.assert_array_equal(a, b)
    for t in CONFIG.lora.targets:
        assert np.abs(adapters1[t]["b"]).max() > 0  # B left zero
        assert np.abs(adapters1[t]["a"] - adapters0[t]["a"]).max() > 0
    moments = sum(x.size for x in jax.tree.leaves(state.opt_state) if x.ndim > 0)
    assert moments == 2 * lora.num_adapter_params(CONFIG)  # Adam's mu and nu, adapters only


def test_tiny_lora_sft_lowers_the_loss(one_device):
    history = one_device[2]  # 20 updates on one batch of random tokens, rank 4
    assert history[-1] < history[0] - 0.4, history
    assert all(b < a for a, b in zip(history, history[1:])), history


def test_checkpoint_holds_adapters_only_and_restores_onto_the_base(one_device, tmp_path):
    _, state, _, _ = one_device
    optimizer, _ = make_optimizer(_Optim, total_steps=20)
    mesh = parallel.make_mesh(devices=jax.devices()[:1])
    checkpointer = Checkpointer(str(tmp_path / "ckpt"), async_save=False)
    checkpointer.save(2, state, None, {"note": "lora"})
    checkpointer.wait()
    stored = {p.name for p in (tmp_path / "ckpt" / "2" / "state").iterdir()}
    assert stored  # something was written ...
    target = train_state.abstract_state(CONFIG, optimizer, mesh)
    with pytest.raises(ValueError, match="base"):
        checkpointer.restore(2, target, None)
    base = train_state.random_params(CONFIG, mesh, seed=3)  # fresh adapters, same base
    restored, _ = checkpointer.restore(2, target, None, base=base)
    for a, b in zip(jax.tree.leaves(restored.params), jax.tree.leaves(state.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    metadata = checkpointer.manager.item_metadata(2)["state"]
    saved_leaves = jax.tree.leaves(metadata["params"])
    assert len(saved_leaves) == 2 * len(CONFIG.lora.targets)  # ... and it is A, B per target
    assert trainable(state.params).keys() == metadata["params"].keys()
    checkpointer.close()


@pytest.mark.parametrize("key,value,message", [
    ("targets", "q,foo", "model.lora.targets"),
    ("quantization", "int4", "model.lora.quantization"),
    ("rank", -2, "model.lora.rank"),
])
def test_bad_lora_config_names_the_key(key, value, message):
    section = ConfigDict(dict(rank=4, alpha=8.0, targets="q,v", quantization="none",
                              quantization_block=64))
    section[key] = value
    with pytest.raises(ConfigError, match=message):
        lora_config(ConfigDict({"model": {"lora": section}}))
    assert lora_config(ConfigDict({"model": {"lora": {**section.to_dict(), "rank": 0}}})) is None
