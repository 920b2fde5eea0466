"""int8 / NF4 block quantization (QLoRA) against a NumPy re-derivation: the same codes and
scales, the same dequantized values, and the error bound of each format; a QLoRA model runs
the dequantized base plus its adapters in training and decode layouts alike."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxreason.model import llama, lora, preset_config, quantize


def _numpy_quantize(w, fmt, block):
    """Absmax per block of `block` along the last axis; int8: round(w / absmax * 127);
    nf4: index of the nearest NF4 level to w / absmax."""
    lead, n = w.shape[:-1], w.shape[-1]
    blocks = w.reshape(*lead, n // block, block).astype(np.float64)
    absmax = np.abs(blocks).max(-1)
    normalized = blocks / np.where(absmax > 0, absmax, 1)[..., None]
    if fmt == "int8":
        codes = np.round(normalized * 127)
        values = codes / 127
    else:
        codes = np.abs(normalized[..., None] - quantize.NF4_LEVELS).argmin(-1)
        values = quantize.NF4_LEVELS[codes]
    return codes.reshape(w.shape), absmax, (values * absmax[..., None]).reshape(w.shape)


@pytest.mark.parametrize("fmt", ["int8", "nf4"])
def test_codes_scales_and_error_bound_match_numpy(fmt):
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((3, 8, 128)) * rng.uniform(0.01, 2, (3, 8, 1))).astype(np.float32)
    w[0, 0, :64] = 0  # an all-zero block dequantizes to zeros
    q = quantize.quantize(jnp.asarray(w), fmt, block=64)
    codes, absmax, expected = _numpy_quantize(w, fmt, 64)
    np.testing.assert_allclose(np.asarray(q.scales), absmax, rtol=1e-6)
    if fmt == "int8":
        np.testing.assert_array_equal(np.asarray(q.codes), codes)
    else:
        packed = np.asarray(q.codes)
        assert packed.dtype == np.uint8 and packed.shape == (3, 8, 64)
        unpacked = np.stack([packed & 0xF, packed >> 4], -1).reshape(w.shape)
        np.testing.assert_array_equal(unpacked, codes)
    restored = np.asarray(quantize.dequantize(q, jnp.float32))
    np.testing.assert_allclose(restored, expected, atol=1e-6)
    assert q.shape == w.shape
    bound = quantize.max_error(fmt) * np.repeat(absmax, 64, axis=-1)
    assert np.all(np.abs(restored - w) <= bound + 1e-6)
    assert np.all(restored[0, 0, :64] == 0)


def test_block_size_tiles_the_last_axis():
    assert quantize.block_size(4096, 64) == 64
    assert quantize.block_size(176, 64) == 44
    assert quantize.block_size(16, 64) == 16
    codes, scales = quantize.quantized_shapes((2, 64, 176), "nf4", 64)
    assert codes == (2, 64, 88) and scales == (2, 64, 4)


@pytest.mark.parametrize("fmt", ["nf4", pytest.param("int8", marks=pytest.mark.slow)])
def test_qlora_model_runs_dequantized_base_plus_adapters(fmt):
    config = preset_config("llama-tiny", vocab_size=64)
    spec = lora.LoraConfig(rank=2, quantization=fmt, quantization_block=16)
    qconfig = config.replace(lora=spec)
    params = llama.init_params(qconfig, jax.random.key(0))
    assert params["layers"]["q"].codes.dtype == (jnp.int8 if fmt == "int8" else jnp.uint8)
    base, adapters = lora.split(params)
    adapters = jax.tree.map(lambda a: a + 0.1, adapters)
    params = lora.join(base, adapters)
    # the oracle: a plain model whose weights are the dequantized ones plus A B, by hand
    plain = {k: v for k, v in base.items() if k != "layers"}
    plain["layers"] = {k: lora.dense_weight(v, jnp.float32) for k, v in base["layers"].items()}
    products = {"q": "ler,lrhd->lehd", "k": "ler,lrhd->lehd", "v": "ler,lrhd->lehd",
                "o": "lhdr,lre->lhde", "gate": "ler,lrm->lem", "up": "ler,lrm->lem",
                "down": "lmr,lre->lme"}
    for t, ab in adapters.items():
        plain["layers"][t] += spec.scale * jnp.einsum(products[t], ab["a"], ab["b"])
    ids = jnp.arange(12).reshape(2, 6) % 64
    expected = llama.forward(plain, config, ids)[0]
    np.testing.assert_allclose(llama.forward(params, qconfig, ids)[0], expected, atol=1e-4)
    decoded = llama.decode_params(params, qconfig)
    assert isinstance(decoded["layers"][0]["q"], quantize.QuantizedWeight)  # stays quantized
    np.testing.assert_allclose(llama.forward(decoded, qconfig, ids)[0], expected, atol=1e-4)
    np.testing.assert_allclose(llama.forward(lora.merged(params, qconfig), config, ids)[0],
                               expected, atol=1e-4)
