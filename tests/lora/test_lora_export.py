"""LoRA against the peers: the trainable count equals the closed form and PEFT's own count; at
step 0 the model is its base; base + adapters (unmerged, in both weight layouts) equals the
merged export loaded by `transformers` and the PEFT adapter loaded by `peft` (float32,
1e-4)."""

import sys
import pathlib

import jax
import numpy as np
import peft
import pytest
import torch

from jaxreason.model import llama, lora
from jaxreason.model.model import ADAPTER_SUBDIR, Model, load_pretrained, save_pretrained

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "model"))
from hf_oracle import hf_logits, hf_model, padded_batch  # noqa: E402

ALL = ("q", "k", "v", "o", "gate", "up", "down")


def _closed_form(hf_config, rank, targets):
    """sum over targets of layers x rank x (in + out), from the HF config's dimensions."""
    h, i = hf_config.hidden_size, hf_config.intermediate_size
    d = h // hf_config.num_attention_heads
    q_out, kv_out = hf_config.num_attention_heads * d, hf_config.num_key_value_heads * d
    sizes = {"q": (h, q_out), "k": (h, kv_out), "v": (h, kv_out), "o": (q_out, h),
             "gate": (h, i), "up": (h, i), "down": (i, h)}
    return sum(hf_config.num_hidden_layers * rank * sum(sizes[t]) for t in targets)


@pytest.mark.parametrize("targets", [ALL, ("o", "down")])
def test_trainable_count_is_the_closed_form_and_peft_s(targets):
    base = hf_model("llama")
    config = llama_config(base).replace(lora=lora.LoraConfig(rank=3, targets=targets))
    params = jax.eval_shape(lambda k: llama.init_params(config, k), jax.random.key(0))
    counted = sum(x.size for x in jax.tree.leaves(lora.split(params)[1]))
    expected = _closed_form(base.config, 3, targets)
    assert counted == lora.num_adapter_params(config) == expected
    peft_model = peft.get_peft_model(base, peft.LoraConfig(
        r=3, target_modules=[lora.HF_MODULES[t].split(".")[-1] for t in targets]))
    assert peft_model.get_nb_trainable_parameters()[0] == expected


def llama_config(hf):
    from jaxreason.model.config import config_from_hf_dict

    return config_from_hf_dict(hf.config.to_dict())


def _randomized_adapters(params, seed=1, std=0.05):
    """Adapters with nonzero B (a trained adapter), so the adapter term matters."""
    base, adapters = lora.split(params)
    keys = iter(jax.random.split(jax.random.key(seed), 2 * len(adapters)))
    adapters = {t: {k: v + std * jax.random.normal(next(keys), v.shape, v.dtype)
                    for k, v in ab.items()} for t, ab in adapters.items()}
    return lora.join(base, adapters)


@pytest.mark.parametrize("kind", ["llama", pytest.param("qwen2", marks=pytest.mark.slow)])
def test_merged_export_and_peft_adapter_match_base_plus_adapters(kind, tmp_path):
    base_hf = hf_model(kind)
    base_hf.save_pretrained(tmp_path / "base")
    spec = lora.LoraConfig(rank=4, alpha=8.0, targets=ALL)
    model = load_pretrained(tmp_path / "base", lora=spec)
    ids, mask = padded_batch()
    step0 = np.asarray(model(ids, attention_mask=mask))
    np.testing.assert_array_equal(step0, np.asarray(load_pretrained(tmp_path / "base")(
        ids, attention_mask=mask)))  # B = 0: exactly the base model

    trained = Model(model.config, _randomized_adapters(model.params))
    ours = np.asarray(trained(ids, attention_mask=mask))
    real = mask.astype(bool)
    base_logits = hf_logits(base_hf, ids, mask)
    assert np.abs(ours - base_logits)[real].max() > 1e-2  # the adapters change the model

    decoded = Model(model.config, llama.decode_params(trained.params, model.config))
    np.testing.assert_allclose(np.asarray(decoded(ids, attention_mask=mask))[real], ours[real],
                               atol=1e-4)  # the sampler's fused layout runs the same adapters

    save_pretrained(trained, tmp_path / "export")
    merged_hf = type(base_hf).from_pretrained(tmp_path / "export").eval()
    np.testing.assert_allclose(hf_logits(merged_hf, ids, mask)[real], ours[real], atol=1e-4)

    with_adapter = peft.PeftModel.from_pretrained(hf_model(kind), tmp_path / "export" /
                                                  ADAPTER_SUBDIR).eval()
    with torch.no_grad():
        peft_logits = with_adapter(input_ids=torch.tensor(ids),
                                   attention_mask=torch.tensor(mask)).logits.numpy()
    np.testing.assert_allclose(peft_logits[real], ours[real], atol=1e-4)


def test_peft_adapter_reads_back_into_the_same_adapters(tmp_path):
    from jaxreason.model import peft as peft_io
    from jaxreason.model.config import preset_config

    config = preset_config("llama-tiny", vocab_size=64).replace(
        lora=lora.LoraConfig(rank=3, alpha=5.0, targets=("q", "o", "down")))
    params = _randomized_adapters(llama.init_params(config, jax.random.key(0)))
    peft_io.save_adapter(str(tmp_path), config, params)
    spec, adapters = peft_io.read_adapter(str(tmp_path), config.replace(lora=None))
    assert spec == config.lora
    for a, b in zip(jax.tree.leaves(adapters), jax.tree.leaves(lora.split(params)[1])):
        np.testing.assert_array_equal(a, np.asarray(b))
