"""`Sampler`: prompts in, samples out, over a (sharded) `Model` and a `transformers` tokenizer.

The host side of generation: turn prompts into token lists, pick bucketed shapes so that a
long run compiles a handful of programs, place the batch on the mesh, run the jitted program
(`engine.generate_program`) and turn its padded arrays into results.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Mapping, Sequence

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from jaxreason import parallel
from jaxreason.model.config import ModelConfig
from jaxreason.model.kv_cache import sampling_cache_bytes
from jaxreason.model.model import Model
from jaxreason.sampling.engine import ProgramInputs, ProgramOutputs, ProgramShape, \
    generate_program
from jaxreason.sampling.params import FINISH_REASONS, FINISH_STOP_STRING, FINISH_STOP_TOKEN, \
    GeneratedBatch, SampleResult, SamplingParams
from jaxreason.sampling.stop_strings import StopStringTables, cut_at_stop

log = logging.getLogger(__name__)

# One jitted program for all samplers: samplers over same-shaped models share compilations.
_PROGRAM = jax.jit(generate_program, static_argnums=(1, 2, 3))


def _cache_size(fn: Any) -> int:
    """Number of programs `fn` has compiled (-1 where jax does not say)."""
    size = getattr(fn, "_cache_size", None)
    return size() if size is not None else -1

Prompt = str | Sequence[Mapping[str, str]] | Sequence[int]


def completion_text(tokenizer: Any, token_ids: Sequence[int] | np.ndarray, finish_code: int,
                    stop_index: int, sampling: SamplingParams) -> str:
    """The one rule that turns a sample's tokens into text (every consumer uses it, so the text
    that earns a reward in training is the text evaluation grades): decode without special
    tokens; when a stop string ended the sample, cut the text at the earliest-ending stop
    string, keeping it when `sampling.include_stop_str_in_output` (the last token may run past
    the string: the text ends with the string either way). Without a tokenizer: empty."""
    return decode_completion(tokenizer, token_ids, finish_code, stop_index, sampling)[0]


def decode_completion(tokenizer: Any, token_ids: Sequence[int] | np.ndarray, finish_code: int,
                      stop_index: int, sampling: SamplingParams) -> tuple[str, str | None]:
    """(`completion_text`, the stop string it was cut at or None)."""
    if tokenizer is None:
        return "", None
    text = tokenizer.decode([int(t) for t in token_ids], skip_special_tokens=True,
                            clean_up_tokenization_spaces=False)
    if finish_code != FINISH_STOP_STRING or not sampling.stop:
        return text, None
    cut, matched = cut_at_stop(text, sampling.stop, sampling.include_stop_str_in_output)
    if matched is not None:
        return cut, matched
    # the decoded text differs from the token bytes (e.g. a tokenizer's cleanup): report the
    # string the in-loop automaton matched and keep the text whole
    stop = sampling.stop[stop_index] if 0 <= stop_index < len(sampling.stop) else None
    return text, stop


def _check_prompt_list(prompts: Any) -> None:
    if isinstance(prompts, str) or (len(prompts) and isinstance(prompts[0], (int, np.integer))):
        raise ValueError("prompts must be a list of prompts (e.g. [text] or [[ids...]]), not a "
                         "single prompt")


def batch_shards(mesh: Any, rules: Any = None) -> int:
    """Devices a sampler batch is split over: the mesh axes of the logical "batch" axis."""
    if mesh is None:
        return 1
    spec = parallel.logical_to_spec(("batch",), None, mesh, rules)[0]
    axes = () if spec is None else (spec,) if isinstance(spec, str) else spec
    sizes = dict(zip(mesh.axis_names, mesh.axis_sizes))
    return int(np.prod([sizes[a] for a in axes]))


def batch_bucket(num_prompts: int, n: int, shards: int,
                 buckets: Sequence[int] | None = None) -> int:
    """Padded prompt count of a call: a configured bucket, else the smallest power of two such
    that the rows (prompts * n) split evenly over the batch shards when possible."""
    if buckets:
        return pick_bucket(num_prompts, buckets, "number of prompts")
    base = 1 << max(0, math.ceil(math.log2(num_prompts)))
    b = base
    while (b * n) % shards and b < base * shards:
        b *= 2
    return b if (b * n) % shards == 0 else base


def prompts_within_budget(config: ModelConfig, num_prompts: int, n: int, prompt_length: int,
                          new_tokens: int, budget_bytes: int, padded: Any, mesh: Any = None,
                          rules: Any = None) -> int:
    """The most prompts (a power of two, or `num_prompts`) whose `n` samples each, padded to
    `padded(prompts)` prompt rows, keep the per-device KV caches of a call
    (`sampling_cache_bytes`) within `budget_bytes`. Raises ValueError when one prompt does
    not fit."""
    def need(prompts: int) -> int:
        return sampling_cache_bytes(config, padded(prompts), n, prompt_length, new_tokens,
                                    mesh, rules)

    if need(num_prompts) <= budget_bytes:
        return num_prompts
    prompts = 1 << max(0, math.ceil(math.log2(num_prompts)) - 1)
    while prompts > 1 and need(prompts) > budget_bytes:
        prompts //= 2
    if need(prompts) > budget_bytes:
        raise ValueError(f"max_kv_cache_bytes: {budget_bytes} bytes per device cannot hold the "
                         f"KV cache of one prompt's {n} samples of {prompt_length} + "
                         f"{new_tokens} slots ({need(1)} bytes per device)")
    return prompts


def powers_of_two(start: int, stop: int) -> tuple[int, ...]:
    """start, 2*start, ... up to the first value >= stop."""
    out = [start]
    while out[-1] < stop:
        out.append(out[-1] * 2)
    return tuple(out)


def pick_bucket(value: int, buckets: Sequence[int], what: str) -> int:
    """The smallest bucket >= value; a clear error when the value exceeds every bucket."""
    for b in buckets:
        if b >= value:
            return b
    raise ValueError(f"{what} {value} exceeds the largest bucket {max(buckets)}; "
                     f"pass larger buckets to Sampler(...)")


class Sampler:
    """Batched generation with a KV cache.

    model: a `jaxreason.Model` (its mesh, if any, shards the batch over `data`/`fsdp` and the
    model over `tensor`). tokenizer: a `transformers` tokenizer; optional when prompts are token
    ids and no stop strings are used. prompt_buckets / new_token_buckets: allowed padded prompt
    lengths and generation budgets (default: powers of two from 16 up to the model's
    `max_position_embeddings`); batch_buckets: allowed prompt counts (default: powers of two,
    doubled further until the rows split evenly over the mesh's batch shards).

    Memory: besides the KV cache (`rows x (prompt bucket + new-token bucket)` slots per layer),
    a call holds one extra copy of the layer weights, re-laid out for decoding and gathered
    over `fsdp` (not for `scan_layers` models). max_kv_cache_bytes (per device, 0 = no
    limit): a batch whose cache would be larger runs as sequential calls over chunks of its
    prompts, each within the budget (one compiled shape). A row's draws depend only on (seed,
    batch-wide prompt index, sample index, step), so the samples are those of one call.
    """

    def __init__(self, model: Model, tokenizer: Any = None, *,
                 prompt_buckets: Sequence[int] | None = None,
                 new_token_buckets: Sequence[int] | None = None,
                 batch_buckets: Sequence[int] | None = None,
                 pad_token_id: int | None = None, max_kv_cache_bytes: int = 0) -> None:
        config = model.config
        limit = max(config.max_position_embeddings, 16)
        self.model = model
        self.tokenizer = tokenizer
        self.prompt_buckets = tuple(sorted(prompt_buckets or powers_of_two(16, limit)))
        self.new_token_buckets = tuple(sorted(new_token_buckets or powers_of_two(16, limit)))
        self.batch_buckets = tuple(sorted(batch_buckets)) if batch_buckets else None
        self.max_kv_cache_bytes = int(max_kv_cache_bytes or 0)
        if pad_token_id is None:
            pad_token_id = getattr(tokenizer, "pad_token_id", None)
        if pad_token_id is None:
            pad_token_id = config.pad_token_id
        if pad_token_id is None:
            eos = self._eos_ids()
            pad_token_id = eos[0] if eos else 0
        self.pad_token_id = int(pad_token_id)
        self._stop_tables = StopStringTables(tokenizer, config.vocab_size)
        self._program = _PROGRAM
        self._seen: set[Any] = set()

    # ----------------------------------------------------------------------------- parameters

    @property
    def params(self) -> Any:
        return self.model.params

    def update_params(self, params: Any) -> None:
        """Sample from new parameters (same shapes, dtypes and shardings: no recompilation)."""
        self.model = Model(self.model.config, params, self.model.mesh, self.model.rules)

    # ----------------------------------------------------------------------------- prompts

    def encode(self, prompts: Sequence[Prompt]) -> list[list[int]]:
        """Token ids of each prompt: strings are tokenized (with the tokenizer's special tokens,
        e.g. BOS), chat message lists go through `apply_chat_template(add_generation_prompt=
        True)`, token-id lists pass through."""
        _check_prompt_list(prompts)
        out = []
        for i, prompt in enumerate(prompts):
            if isinstance(prompt, str):
                out.append(list(self._need_tokenizer()(prompt)["input_ids"]))
            elif isinstance(prompt, np.ndarray) or (
                    len(prompt) and all(isinstance(t, (int, np.integer)) for t in prompt)):
                out.append([int(t) for t in prompt])
            elif len(prompt) and all(isinstance(m, Mapping) for m in prompt):
                tok = self._need_tokenizer()
                text = tok.apply_chat_template(list(prompt), tokenize=False,
                                               add_generation_prompt=True)
                out.append(list(tok(text, add_special_tokens=False)["input_ids"]))
            else:
                raise ValueError(f"prompt {i}: expected a string, a list of chat messages "
                                 f"({{'role', 'content'}} dicts) or a list of token ids, got "
                                 f"{prompt!r:.80}")
            if not out[-1]:
                raise ValueError(f"prompt {i} has no tokens")
        return out

    def _need_tokenizer(self) -> Any:
        if self.tokenizer is None:
            raise ValueError("text and chat prompts need a tokenizer: Sampler(model, tokenizer)")
        return self.tokenizer

    def _eos_ids(self) -> list[int]:
        """Tokens that end a sample unless `ignore_eos`: the tokenizer's EOS and end-of-turn
        tokens (`tokenizer.stop_token_ids`: Llama 3 chat turns end with <|eot_id|>) and the
        model config's EOS."""
        from jaxreason.tokenizer import stop_token_ids

        ids = stop_token_ids(self.tokenizer) if self.tokenizer is not None else []
        source = self.model.config.eos_token_id
        for t in (source if isinstance(source, (tuple, list)) else (source,)):
            if t is not None and int(t) not in ids:
                ids.append(int(t))
        return ids

    # ----------------------------------------------------------------------------- generation

    def generate(self, prompts: Sequence[Prompt], sampling: SamplingParams | None = None, *,
                 params: Any = None) -> list[SampleResult]:
        """Samples for each prompt, prompt-major (`len(prompts) * sampling.n` results).

        params: model parameters to use for this call instead of the sampler's."""
        sampling = sampling or SamplingParams()
        prompt_ids = self.encode(prompts)
        batch = self.generate_ids(prompt_ids, sampling, params=params)
        results = []
        for r in range(batch.tokens.shape[0]):
            length = int(batch.lengths[r])
            token_ids = batch.tokens[r, :length].tolist()
            code = int(batch.finish_codes[r])
            text, stop_string = decode_completion(self.tokenizer, token_ids, code,
                                                  int(batch.stop_index[r]), sampling)
            stop_reason: str | int | None = stop_string
            if code == FINISH_STOP_TOKEN:
                stop_reason = token_ids[-1]
            p = int(batch.prompt_index[r])
            results.append(SampleResult(
                text=text, token_ids=token_ids, logprobs=batch.logprobs[r, :length].tolist(),
                raw_logprobs=batch.raw_logprobs[r, :length].tolist(),
                finish_reason=FINISH_REASONS[code], stop_reason=stop_reason, prompt_index=p,
                sample_index=int(batch.sample_index[r]), prompt_token_ids=prompt_ids[p]))
        return results

    def generate_ids(self, prompts: Sequence[Sequence[int]] | np.ndarray,
                     sampling: SamplingParams | None = None, *, attention_mask: Any = None,
                     params: Any = None) -> GeneratedBatch:
        """Array API: token-id prompts in, padded numpy arrays out (see `GeneratedBatch`).

        prompts: lists of token ids, or a padded `[prompts, length]` array with
        `attention_mask` (1 = real token; left, right or any padding)."""
        sampling = sampling or SamplingParams()
        if attention_mask is not None:
            ids, mask = np.asarray(prompts), np.asarray(attention_mask).astype(bool)
            if ids.shape != mask.shape or ids.ndim != 2:
                raise ValueError(f"prompts {ids.shape} and attention_mask {mask.shape} must be "
                                 f"the same [prompts, length] shape")
            prompts = [row[m].tolist() for row, m in zip(ids, mask)]
        _check_prompt_list(prompts)
        prompts = [list(map(int, p)) for p in prompts]
        if not prompts:
            raise ValueError("generate needs at least one prompt")
        for i, p in enumerate(prompts):
            if not p:
                raise ValueError(f"prompt {i} has no tokens")
            bad = [t for t in p if not 0 <= t < self.model.config.vocab_size]
            if bad:
                raise ValueError(f"prompt {i}: token ids {bad[:5]} are outside the model's "
                                 f"vocabulary [0, {self.model.config.vocab_size})")
        n = sampling.n
        prompt_length = pick_bucket(max(map(len, prompts)), self.prompt_buckets, "prompt length")
        new_tokens = pick_bucket(sampling.max_new_tokens, self.new_token_buckets,
                                 "max_new_tokens")
        per_call = self.prompts_per_call(len(prompts), n, prompt_length, new_tokens)
        params = self.model.params if params is None else params
        parts = []
        for first in range(0, len(prompts), per_call):  # sequential chunks: same samples
            chunk = prompts[first:first + per_call]
            shape = ProgramShape(prompts=self._batch_bucket(per_call, n), n=n,  # one shape
                                 prompt_length=prompt_length, new_tokens=new_tokens,
                                 greedy=sampling.greedy, truncates=sampling.truncates)
            out = self._run(params, self._inputs(chunk, sampling, shape, first), shape)
            rows = len(chunk) * n
            parts.append([x[:rows] for x in out])
        out = ProgramOutputs(*(np.concatenate(x) for x in zip(*parts)))
        width = sampling.max_new_tokens
        return GeneratedBatch(
            tokens=out.tokens[:, :width], logprobs=out.logprobs[:, :width],
            raw_logprobs=out.raw_logprobs[:, :width], lengths=out.lengths,
            finish_codes=out.finish_codes, stop_index=out.stop_index,
            prompt_index=np.repeat(np.arange(len(prompts)), n),
            sample_index=np.tile(np.arange(n), len(prompts)))

    def prompts_per_call(self, num_prompts: int, n: int, prompt_length: int,
                         new_tokens: int) -> int:
        """Prompts of one program call: all of them, or with `max_kv_cache_bytes` the most
        (a batch bucket) whose caches (`sampling_cache_bytes`) fit the budget."""
        if not self.max_kv_cache_bytes:
            return num_prompts
        return prompts_within_budget(
            self.model.config, num_prompts, n, prompt_length, new_tokens,
            self.max_kv_cache_bytes,
            lambda p: self._batch_bucket(p, n), self.model.mesh, self.model.rules)

    def _run(self, params: Any, inputs: ProgramInputs, shape: ProgramShape) -> ProgramOutputs:
        """One program call; host copies of its outputs."""
        n = shape.n
        cached = _cache_size(self._program)
        start = time.perf_counter()
        with self.model.context():
            out = self._program(params, self.model.config, shape, self.model.rules, inputs)
        key = (shape, inputs.stop_token_ids.shape, inputs.stop_tables.shape)
        new = _cache_size(self._program) != cached if cached >= 0 else key not in self._seen
        self._seen.add(key)
        if new:
            log.info("sampler: compiled a generate program in %.1fs: %d prompts x %d samples, "
                     "prompt length %d, %d new tokens, greedy=%s, top-k/top-p=%s, %d stop ids, "
                     "stop tables %s", time.perf_counter() - start, shape.prompts, n,
                     shape.prompt_length, shape.new_tokens, shape.greedy, shape.truncates,
                     inputs.stop_token_ids.shape[0], inputs.stop_tables.shape)
        return parallel.to_host(out)

    # ----------------------------------------------------------------------------- internals

    def _batch_shards(self) -> int:
        return batch_shards(self.model.mesh, self.model.rules)

    def _batch_bucket(self, num_prompts: int, n: int) -> int:
        return batch_bucket(num_prompts, n, self._batch_shards(), self.batch_buckets)

    def _inputs(self, prompts: list[list[int]], sampling: SamplingParams,
                shape: ProgramShape, first_prompt: int = 0) -> ProgramInputs:
        """Inputs of one call over `prompts`, the call's share of a batch starting at prompt
        `first_prompt` (the batch-wide prompt index seeds each row's draws)."""
        ids = np.full((shape.prompts, shape.prompt_length), self.pad_token_id, np.int32)
        mask = np.zeros((shape.prompts, shape.prompt_length), np.int32)
        for i, p in enumerate(prompts):
            ids[i, shape.prompt_length - len(p):] = p
            mask[i, shape.prompt_length - len(p):] = 1
        for i in range(len(prompts), shape.prompts):  # batch padding: one dummy token
            mask[i, -1] = 1
        slot = np.repeat(np.arange(shape.prompts, dtype=np.int32), shape.n)
        prompt_index = slot + np.int32(first_prompt)
        sample_index = np.tile(np.arange(shape.n, dtype=np.int32), shape.prompts)
        stop_ids = list(sampling.stop_token_ids)
        if not sampling.ignore_eos:
            stop_ids += [t for t in self._eos_ids() if t not in stop_ids]
        stop_ids_arr = np.full((max(8, 1 << math.ceil(math.log2(max(len(stop_ids), 1)))),), -1,
                               np.int32)
        stop_ids_arr[:len(stop_ids)] = stop_ids
        if sampling.stop:
            slots = 1 << math.ceil(math.log2(len(sampling.stop)))
            longest = max(len(s.encode()) for s in sampling.stop)
            states = 1 << math.ceil(math.log2(longest + 1))
            tables, lengths = self._stop_tables.build(sampling.stop, slots, states)
        else:
            tables = np.zeros((0, 1, self.model.config.vocab_size), np.int32)
            lengths = np.zeros((0,), np.int32)
        inputs = ProgramInputs(
            prompt_ids=ids, prompt_mask=mask, prompt_index=prompt_index,
            sample_index=sample_index, active=slot < len(prompts),
            stop_token_ids=stop_ids_arr, stop_tables=tables, stop_lengths=lengths,
            seed=np.uint32(sampling.seed % 2**32), max_new_tokens=np.int32(sampling.max_new_tokens),
            temperature=np.float32(sampling.temperature or 1.0), top_k=np.int32(sampling.top_k),
            top_p=np.float32(sampling.top_p), pad_token_id=np.int32(self.pad_token_id))
        return self._place(inputs)

    def _place(self, inputs: ProgramInputs) -> ProgramInputs:
        """Put the inputs on the mesh: batch-shaped arrays split over the batch axes, the rest
        replicated. Every process passes the same global prompts."""
        mesh = self.model.mesh
        if mesh is None:
            return ProgramInputs(*(jax.numpy.asarray(x) for x in inputs))
        batch_fields = {"prompt_ids", "prompt_mask", "prompt_index", "sample_index", "active"}
        placed = []
        for name, x in zip(ProgramInputs._fields, inputs):
            x = np.asarray(x)
            if name in batch_fields:
                names = ("batch",) + (None,) * (x.ndim - 1)
                spec = parallel.logical_to_spec(names, x.shape, mesh, self.model.rules)
            else:
                spec = PartitionSpec()
            placed.append(jax.make_array_from_callback(
                x.shape, NamedSharding(mesh, spec), lambda index, x=x: x[index]))
        return ProgramInputs(*placed)
