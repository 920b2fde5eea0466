"""The jitted generation program: prefill, then a `lax.while_loop` of one-token decode steps.

Everything per step (the forward, truncation, sampling, stop checks, writing outputs) runs
inside the loop, so a call costs one dispatch however many tokens it makes. Shapes are static
per `ProgramShape` (the sampler buckets them); sampling settings, the token budget and the model
parameters are traced arguments, so changing them never recompiles.

Prompts arrive left-padded (`[prompts, prompt_length]`), so every row's last prompt token sits
in the last column and its first new token goes to cache slot `prompt_length` (slot 0 of the
rows' own cache when n > 1 samples share the prompt's); positions are
explicit (count of real tokens), which makes the padding invisible to the model. With `n > 1`
samples per prompt the prompt is prefilled once and its cache shared by the n rows
(`KVCache.shared_prefix`: a decode step reads it once per prompt); the rows' own caches hold
only the new tokens.

Prefill and every decode step are the model's own `forward` (one decoder for training, prefill
and decode). What makes decoding fast is data layout, applied once per call: the weights are
re-laid out by `llama.decode_params` (fused q/k/v and gate/up, per-layer tuples) and the cache
holds per-layer buffers in matmul order (`KVCache(per_layer=True)`); `scan_layers` models keep
stacked weights and cache (one scanned layer body keeps deep models' compile time down).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxreason.model.config import ModelConfig
from jaxreason.model.kv_cache import KVCache
from jaxreason.model.llama import decode_params, forward, lm_head
from jaxreason.parallel import LogicalRules, constrain, logical_rules
from jaxreason.sampling.params import FINISH_LENGTH, FINISH_STOP_STRING, FINISH_STOP_TOKEN


@dataclasses.dataclass(frozen=True)
class ProgramShape:
    """Static shape of one compiled program.

    prompts: prompt rows (bucketed); n: samples per prompt (rows = prompts * n);
    prompt_length / new_tokens: bucketed lengths (cache length = their sum);
    greedy: argmax decoding; truncates: top-k / top-p filtering is compiled in.
    """

    prompts: int
    n: int
    prompt_length: int
    new_tokens: int
    greedy: bool
    truncates: bool

    @property
    def rows(self) -> int:
        return self.prompts * self.n


class ProgramInputs(NamedTuple):
    """Traced inputs. prompt_ids / prompt_mask: `[prompts, prompt_length]` left-padded;
    prompt_index / sample_index / active: `[rows]` (inactive rows are batch padding);
    stop_token_ids: `[k]` (-1 = unused); stop_tables: `[strings, states, vocab]`;
    stop_lengths: `[strings]`; scalars: seed, max_new_tokens, temperature, top_k, top_p,
    pad_token_id."""

    prompt_ids: jax.Array
    prompt_mask: jax.Array
    prompt_index: jax.Array
    sample_index: jax.Array
    active: jax.Array
    stop_token_ids: jax.Array
    stop_tables: jax.Array
    stop_lengths: jax.Array
    seed: jax.Array
    max_new_tokens: jax.Array
    temperature: jax.Array
    top_k: jax.Array
    top_p: jax.Array
    pad_token_id: jax.Array


class ProgramOutputs(NamedTuple):
    """tokens / logprobs / raw_logprobs: `[rows, new_tokens]`; lengths / finish_codes /
    stop_index: `[rows]`."""

    tokens: jax.Array
    logprobs: jax.Array
    raw_logprobs: jax.Array
    lengths: jax.Array
    finish_codes: jax.Array
    stop_index: jax.Array


def truncate_logits(logits: jax.Array, top_k: jax.Array, top_p: jax.Array) -> jax.Array:
    """Set to -inf every logit outside the top-k, then outside the top-p nucleus of the
    renormalized top-k distribution. logits: `[rows, vocab]` (already temperature-scaled);
    top_k: 0 = off; top_p: 1 = off. Tokens tied with the last kept logit are kept too."""
    vocab = logits.shape[-1]
    ordered = -jnp.sort(-logits, axis=-1)  # descending
    k = jnp.where(top_k > 0, jnp.minimum(top_k, vocab), vocab)
    rank = jnp.arange(vocab)
    in_top_k = rank[None, :] < k
    probs = jax.nn.softmax(jnp.where(in_top_k, ordered, -jnp.inf), axis=-1)
    mass_before = jnp.cumsum(probs, axis=-1) - probs
    keep = in_top_k & (mass_before < top_p)  # rank 0 is always kept
    kept = jnp.sum(keep, axis=-1, keepdims=True)
    threshold = jnp.take_along_axis(ordered, kept - 1, axis=-1)
    return jnp.where(logits >= threshold, logits, -jnp.inf)


def first_argmax(x: jax.Array) -> jax.Array:
    """`jnp.argmax` over the last axis (first maximal index) as two plain reductions: XLA's CPU
    argmax (a variadic reduce) costs as much as a matmul over the same array."""
    best = jnp.max(x, axis=-1, keepdims=True)
    index = jnp.arange(x.shape[-1], dtype=jnp.int32)
    return jnp.min(jnp.where(x == best, index, x.shape[-1]), axis=-1)


def sample_step(logits: jax.Array, keys: jax.Array, step: jax.Array, inputs: ProgramInputs,
                shape: ProgramShape) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Draw one token per row. logits: `[rows, vocab]` float32; keys: `[rows]` typed keys.

    Returns tokens `[rows]`, their log-probs under the distribution used (0 when greedy) and
    under the raw model distribution (temperature 1, no truncation)."""
    if shape.greedy:
        tokens = first_argmax(logits)
        used = jnp.zeros(tokens.shape, jnp.float32)
    else:
        scaled = logits / inputs.temperature
        if shape.truncates:
            scaled = truncate_logits(scaled, inputs.top_k, inputs.top_p)
        step_keys = jax.vmap(jax.random.fold_in, (0, None))(keys, step)
        gumbel = jax.vmap(lambda k: jax.random.gumbel(k, logits.shape[-1:], jnp.float32))(
            step_keys)
        tokens = first_argmax(scaled + gumbel)
        used = logprob_at(scaled, tokens)
    return tokens, used, logprob_at(logits, tokens)


def logprob_at(logits: jax.Array, tokens: jax.Array) -> jax.Array:
    """`jax.nn.log_softmax(logits)[row, tokens[row]]` `[rows]` without the `[rows, vocab]`
    log-softmax: the same operations as `log_softmax` on the picked entries only (identical
    values), so a decode step makes one max and one sum of exponentials per row."""
    best = jnp.max(logits, axis=-1, keepdims=True)
    log_norm = jnp.log(jnp.sum(jnp.exp(logits - best), axis=-1))
    picked = jnp.take_along_axis(logits, tokens[:, None], axis=-1)[:, 0]
    return (picked - best[:, 0]) - log_norm


class _Carry(NamedTuple):
    step: jax.Array  # tokens emitted so far
    cache: KVCache
    last: jax.Array  # [rows] token to feed next
    done: jax.Array  # [rows]
    stop_state: jax.Array  # [rows, strings]
    out: ProgramOutputs


def _record(carry: _Carry, tokens: jax.Array, used: jax.Array, raw: jax.Array,
            inputs: ProgramInputs) -> _Carry:
    """Write the step's tokens for rows still running; update stop checks and done flags."""
    emit = ~carry.done
    tokens = jnp.where(emit, tokens, inputs.pad_token_id)
    used = jnp.where(emit, used, 0.0)
    raw = jnp.where(emit, raw, 0.0)
    out = carry.out
    at = (0, carry.step)
    hit_token = emit & jnp.any(tokens[:, None] == inputs.stop_token_ids[None, :], axis=-1)
    stop_state = carry.stop_state
    stop_index = out.stop_index
    hit_string = jnp.zeros_like(emit)
    if stop_state.shape[1]:
        strings = jnp.arange(stop_state.shape[1])[None, :]
        new_state = inputs.stop_tables[strings, stop_state, tokens[:, None]]
        stop_state = jnp.where(emit[:, None], new_state, stop_state)
        matched = stop_state == inputs.stop_lengths[None, :]
        hit_string = emit & ~hit_token & jnp.any(matched, axis=-1)
        stop_index = jnp.where(hit_string, jnp.argmax(matched, axis=-1).astype(jnp.int32),
                               stop_index)
    finish = jnp.where(hit_token, FINISH_STOP_TOKEN,
                       jnp.where(hit_string, FINISH_STOP_STRING, out.finish_codes))
    out = ProgramOutputs(
        tokens=jax.lax.dynamic_update_slice(out.tokens, tokens[:, None], at),
        logprobs=jax.lax.dynamic_update_slice(out.logprobs, used[:, None], at),
        raw_logprobs=jax.lax.dynamic_update_slice(out.raw_logprobs, raw[:, None], at),
        lengths=out.lengths + emit.astype(jnp.int32),
        finish_codes=finish.astype(jnp.int32),
        stop_index=stop_index)
    done = carry.done | hit_token | hit_string
    return carry._replace(step=carry.step + 1, last=tokens, done=done, stop_state=stop_state,
                          out=out)


def generate_program(params: Any, config: ModelConfig, shape: ProgramShape,
                     rules: LogicalRules, inputs: ProgramInputs) -> ProgramOutputs:
    """Prefill + decode loop; jit with `config`, `shape` and `rules` static (the logical axis
    rules are an argument so that programs traced under other rules are cached apart)."""
    with logical_rules(rules):
        return _generate(params, config, shape, inputs)


def _generate(params: Any, config: ModelConfig, shape: ProgramShape,
              inputs: ProgramInputs) -> ProgramOutputs:
    rows, n = shape.rows, shape.n
    cache_length = shape.prompt_length + shape.new_tokens
    ids = constrain(inputs.prompt_ids, ("batch", "length"))
    mask = constrain(inputs.prompt_mask, ("batch", "length"))
    positions = jnp.maximum(jnp.cumsum(mask, axis=1) - 1, 0)
    weights = decode_params(params, config)
    cache = KVCache.create(config, shape.prompts, shape.prompt_length,
                           per_layer=not config.scan_layers)
    hidden, cache = forward(weights, config, ids, positions, mask, cache=cache,
                            return_hidden=True)
    logits = lm_head(weights, config, hidden[:, -1])  # [prompts, vocab]
    prompt_lengths = jnp.sum(mask, axis=1).astype(jnp.int32)
    if n > 1:  # n rows per prompt read its prefill once (`KVCache.shared_prefix`)
        cache = cache.shared_prefix(n, shape.new_tokens)
        logits = jnp.repeat(logits, n, axis=0)
        prompt_lengths = jnp.repeat(prompt_lengths, n, axis=0)
    else:
        cache = cache.pad(cache_length)
    logits = constrain(logits, ("batch", "act_vocab"))

    base = jax.random.key(inputs.seed)
    keys = jax.vmap(lambda p, s: jax.random.fold_in(jax.random.fold_in(base, p), s))(
        inputs.prompt_index, inputs.sample_index)

    def zeros(dtype: Any) -> jax.Array:
        return constrain(jnp.zeros((rows, shape.new_tokens), dtype), ("batch", None))

    num_strings = inputs.stop_lengths.shape[0]
    carry = _Carry(
        step=jnp.zeros((), jnp.int32), cache=cache,
        last=jnp.zeros((rows,), jnp.int32), done=~inputs.active,
        stop_state=jnp.zeros((rows, num_strings), jnp.int32),
        out=ProgramOutputs(
            tokens=zeros(jnp.int32) + inputs.pad_token_id, logprobs=zeros(jnp.float32),
            raw_logprobs=zeros(jnp.float32), lengths=jnp.zeros((rows,), jnp.int32),
            finish_codes=jnp.full((rows,), FINISH_LENGTH, jnp.int32),
            stop_index=jnp.full((rows,), -1, jnp.int32)))
    carry = _record(carry, *sample_step(logits, keys, carry.step, inputs, shape), inputs)

    def running(c: _Carry) -> jax.Array:
        return (c.step < inputs.max_new_tokens) & ~jnp.all(c.done)

    def step(c: _Carry) -> _Carry:
        positions = prompt_lengths + c.step - 1  # of the token fed in, c.last
        step_logits, cache = forward(weights, config, c.last[:, None], positions[:, None],
                                     jnp.ones((rows, 1), jnp.int32), cache=c.cache)
        step_logits = step_logits[:, 0]
        c = c._replace(cache=cache)
        return _record(c, *sample_step(step_logits, keys, c.step, inputs, shape), inputs)

    return jax.lax.while_loop(running, step, carry).out
