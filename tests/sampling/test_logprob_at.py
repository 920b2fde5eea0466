"""`engine.logprob_at` (the decode step's log-prob of the picked token) equals the entry of a
full `jax.nn.log_softmax` exactly, including rows with -inf (truncated) logits."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxreason.sampling.engine import logprob_at


def test_logprob_at_equals_log_softmax_entry_bitwise():
    logits = 5.0 * jax.random.normal(jax.random.key(0), (16, 2048), jnp.float32)
    logits = logits.at[3, 100:].set(-jnp.inf)  # a truncated row (top-k / top-p)
    tokens = jax.random.randint(jax.random.key(1), (16,), 0, 2048).at[3].set(7)
    full = jnp.take_along_axis(jax.nn.log_softmax(logits, axis=-1), tokens[:, None], -1)[:, 0]
    fast = jax.jit(logprob_at)(logits, tokens)
    expected = jax.jit(lambda x, t: jnp.take_along_axis(
        jax.nn.log_softmax(x, axis=-1), t[:, None], -1)[:, 0])(logits, tokens)
    np.testing.assert_array_equal(np.asarray(fast), np.asarray(expected))
    np.testing.assert_allclose(np.asarray(fast), np.asarray(full), rtol=0, atol=1e-6)
