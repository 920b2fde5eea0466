"""Float32 islands under bf16 compute (README "Numerics"): RoPE, attention softmax, logits.

At the level of logits a tiny model cannot tell a bf16 RoPE or softmax from a float32 one (both
sit inside bf16 noise; see test_hf_parity), so each claim is checked where it is exact:

* `apply_rope` on bf16 inputs is the float32 rotation correctly rounded to bf16 (<= 0.5 ulp of
  the float64 rotation); the same rotation done in bf16 is thousands of ulps off (control);
* in the traced bf16 forward every `exp` (the softmax) and every `cos` / `sin` (the RoPE
  tables) takes float32, and the logits are float32; a softmax monkeypatched to bf16 is found
  (control).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxreason.model import llama, preset_config

BF16 = jnp.bfloat16


def _rope_inputs():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(2, 64, 4, 16)), BF16)
    inv = 1.0 / 10000 ** (np.arange(0, 16, 2) / 16)
    angles = np.arange(64)[None, :, None, None] * inv
    cos = jnp.asarray(np.broadcast_to(np.cos(angles), (2, 64, 1, 8)), jnp.float32)
    sin = jnp.asarray(np.broadcast_to(np.sin(angles), (2, 64, 1, 8)), jnp.float32)
    return x, (cos, sin)


def _rope_error_in_ulps() -> float:
    """Max error of `llama.apply_rope` (bf16 in, bf16 out) in bf16 ulps of the exact rotation."""
    x, (cos, sin) = _rope_inputs()
    out = np.asarray(llama.apply_rope(x, (cos, sin)), np.float64)
    x64, c, s = (np.asarray(a, np.float64) for a in (x, cos, sin))
    x1, x2 = np.split(x64, 2, axis=-1)
    exact = np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1)
    ulp = 2.0 ** (np.floor(np.log2(np.maximum(np.abs(exact), 1e-30))) - 7)  # 8-bit significand
    return float((np.abs(out - exact) / ulp).max())


def _rope_in_bf16(x, rope):
    cos, sin = rope
    x1, x2 = jnp.split(x.astype(BF16), 2, axis=-1)
    cos, sin = cos.astype(BF16), sin.astype(BF16)
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(x.dtype)


def test_rope_on_bf16_inputs_is_the_float32_rotation_correctly_rounded():
    assert _rope_error_in_ulps() <= 0.501


def test_rope_check_fails_a_rotation_computed_in_bf16(monkeypatch):
    monkeypatch.setattr(llama, "apply_rope", _rope_in_bf16)
    assert _rope_error_in_ulps() > 10


def _equations(jaxpr):
    """Every equation of a jaxpr and of the jaxprs nested in it (jit, custom_jvp, scan ...)."""
    for eqn in jaxpr.eqns:
        yield eqn
        for value in eqn.params.values():
            for sub in value if isinstance(value, (list, tuple)) else [value]:
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    yield from _equations(inner)


def _bf16_forward_dtypes() -> tuple[dict[str, set[str]], str]:
    """{primitive: input dtypes} for exp / cos / sin in the bf16 forward, and the logits dtype."""
    config = preset_config("llama-tiny", vocab_size=64, dtype="bfloat16", param_dtype="float32")
    params = llama.init_params(config, jax.random.key(0))
    ids = jnp.zeros((2, 8), jnp.int32)
    closed = jax.make_jaxpr(lambda p, i: llama.forward(p, config, i)[0])(params, ids)
    seen: dict[str, set[str]] = {"exp": set(), "cos": set(), "sin": set()}
    for eqn in _equations(closed.jaxpr):
        if eqn.primitive.name in seen:
            seen[eqn.primitive.name].update(str(v.aval.dtype) for v in eqn.invars)
    return seen, str(closed.out_avals[0].dtype)


def test_softmax_rope_tables_and_logits_are_float32_under_bf16_compute():
    seen, logits_dtype = _bf16_forward_dtypes()
    assert seen == {"exp": {"float32"}, "cos": {"float32"}, "sin": {"float32"}}
    assert logits_dtype == "float32"


def test_dtype_check_fails_a_softmax_computed_in_bf16(monkeypatch):
    softmax = jax.nn.softmax
    monkeypatch.setattr(jax.nn, "softmax",
                        lambda x, axis=-1, **kwargs: softmax(x.astype(BF16), axis=axis, **kwargs))
    seen, _ = _bf16_forward_dtypes()
    assert "bfloat16" in seen["exp"]
