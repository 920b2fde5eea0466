"""Will a recipe fit? The per-device memory of one stage, from the architecture, the mesh and
the config alone: no weights are read and nothing full-size is allocated.

Two phases alternate on every device and the larger one sets the peak:

- **train step**: parameters + optimizer moments (the state, always resident) + gradients
  (two copies with micro-batches: the accumulator and one micro-batch's) + activations of one
  micro-batch (the remat policy decides what is kept per layer) + a frozen reference model
  when the recipe keeps one;
- **sampling** (GRPO rollouts, the sample / pairs stages, evaluation): the resident state +
  the weights re-laid out for decoding (compute dtype, gathered over `fsdp`, split over
  `tensor`; `llama.decode_params`) + the KV cache of one sampler call, which
  `sampling.max_kv_cache_bytes` bounds by running the batch in sequential chunks.

Parameter, optimizer and gradient bytes come from the lifecycle's own builders
(`optim.make_optimizer`, `state.abstract_state`: the shardings a run uses), KV-cache bytes from
`kv_cache.sampling_cache_bytes` (the rule the sampler chunks with: n samples of a prompt share
its prefix). Activations are a closed
form (`activation_bytes`); `train.dry_run` can also compile the real step and sampler program
and read XLA's memory analysis.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import optax

from jaxreason import parallel
from jaxreason.model.config import ModelConfig
from jaxreason.model.kv_cache import cache_bytes_per_device, sampling_cache_bytes
from jaxreason.train.errors import ConfigError

# Memory per chip / GPU, as the vendors state it (bytes).
DEVICE_MEMORY = {
    "tpu-v5p": 95 * 10**9,
    "tpu-v6e": 32 * 10**9,
    "h100-80gb": 80 * 2**30,
    "h200": 141 * 10**9,
}
USABLE_FRACTION = 0.9  # the rest is left to the runtime, fragmentation and XLA's scratch
# KV caches a `scan_layers` sampler holds during a decode step. It was 3 (the loop's carry,
# and the stacked cache the layer scan read as input and wrote as output); the scanned decode
# step now carries the stacked cache and writes each layer's slab back in place
# (`llama.forward`), measured at 1.2x the cache for 8 layers, i.e. one extra layer's slab.
SCAN_CACHE_COPIES = 1
_QUERY_BLOCK, _QUERY_BLOCKS = 64, 16  # llama.causal_attention's blocking of long rows


@dataclasses.dataclass(frozen=True)
class Workload:
    """What one stage asks of a device. train_rows: global rows of one optimizer update (0:
    the stage does not train); step_rows: rows of a whole algorithm step (the pre-step's
    forwards run over all of them, `microbatches` parts at a time); sample_prompts x
    samples_per_prompt rows per sampler call, sharing each prompt's prompt_tokens cache slots
    and holding new_tokens slots each (0 prompts: no sampling)."""

    kind: str
    train_rows: int = 0
    step_rows: int = 0
    row_length: int = 0
    microbatches: int = 1
    prestep_forwards: int = 0
    reference_model: bool = False
    sample_prompts: int = 0
    samples_per_prompt: int = 1
    prompt_tokens: int = 0
    new_tokens: int = 0
    sampler: str = ""  # which sampler the figures are for


def _pow2(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(n, 1))))


def _eval_sampling(config: Any) -> dict[str, Any]:
    """Evaluation's sampler: eval.batch_size greedy prompts (prompts assumed <= 512 tokens)."""
    if not config.eval.data:
        return {}
    return dict(sample_prompts=int(config.eval.batch_size), samples_per_prompt=1,
                prompt_tokens=512, new_tokens=_pow2(int(config.eval.max_new_tokens)),
                sampler="evaluation")


def workload(config: Any) -> Workload | None:
    """The workload of a stage config by its trainer; None for stages without a model."""
    kind, t = config.trainer, config.train
    if kind in ("sft", "dpo"):
        rows = int(t.batch_size)
        return Workload(kind, train_rows=rows, step_rows=rows, row_length=int(config.data.max_length),
                        microbatches=int(t.num_microbatches), **_eval_sampling(config))
    if kind == "grpo":
        g = config.grpo
        rows = int(g.prompts_per_step) * int(g.group_size)
        updates = int(g.num_iterations) * int(g.num_minibatches)
        rollout = dict(sample_prompts=int(g.prompts_per_step), samples_per_prompt=int(g.group_size),
                       prompt_tokens=int(g.max_prompt_tokens), new_tokens=int(g.max_new_tokens),
                       sampler="rollouts")
        evaluation = _eval_sampling(config)
        if evaluation and (evaluation["sample_prompts"] * (evaluation["prompt_tokens"] +
                           evaluation["new_tokens"]) > rows * (rollout["prompt_tokens"] +
                                                               rollout["new_tokens"])):
            rollout = evaluation
        return Workload(kind, train_rows=rows // int(g.num_minibatches), step_rows=rows,
                        row_length=int(g.max_prompt_tokens) + int(g.max_new_tokens),
                        microbatches=int(t.num_microbatches),
                        prestep_forwards=int(updates > 1) + int(g.beta > 0),
                        reference_model=g.beta > 0, **rollout)
    if kind in ("sample", "pairs"):
        s = config.sample
        n = int(config.pairs.n) if kind == "pairs" else int(s.n)
        return Workload(kind, sample_prompts=int(s.batch_size), samples_per_prompt=n,
                        prompt_tokens=_pow2(int(s.max_prompt_tokens)),
                        new_tokens=_pow2(int(s.max_new_tokens)), sampler="sample stage")
    return None


@dataclasses.dataclass
class Plan:
    """Per-device bytes of one stage on one mesh (see the module docstring)."""

    stage: str
    kind: str
    mesh: dict[str, int]
    params_bytes: int
    optimizer_bytes: int
    gradients_bytes: int
    activations_bytes: int
    prestep_bytes: int
    reference_bytes: int
    decode_weights_bytes: int
    kv_cache_bytes: int
    kv_cache_copies: int
    sampling_calls: int
    largest_buffer: tuple[str, int]
    device: str
    device_memory_bytes: int
    notes: list[str] = dataclasses.field(default_factory=list)
    compiled: dict[str, Any] = dataclasses.field(default_factory=dict)
    blocked: str = ""  # why the run would stop before its first step, whatever the memory
    sampler: str = ""  # which sampler the sampling figures are for

    @property
    def train_peak_bytes(self) -> int:
        """The train step's peak: XLA's (arguments + temporaries; the new state aliases the
        donated one) when the step was compiled, else the closed form."""
        if "train_step" in self.compiled:
            return self.compiled["train_step"]["argument_bytes"] + \
                self.compiled["train_step"]["temp_bytes"]
        if not self.gradients_bytes and not self.activations_bytes:
            return 0
        return (self.params_bytes + self.optimizer_bytes + self.reference_bytes +
                max(self.gradients_bytes + self.activations_bytes, self.prestep_bytes))

    @property
    def sampling_peak_bytes(self) -> int:
        """Sampling's peak: the resident state beside the sampler program (XLA's arguments,
        temporaries and outputs when compiled, else decoding weights + KV cache)."""
        resident = self.params_bytes + self.optimizer_bytes + self.reference_bytes
        if "sampler" in self.compiled:
            c = self.compiled["sampler"]
            return (resident - self.params_bytes + c["argument_bytes"] + c["temp_bytes"] +
                    c["output_bytes"])
        if not self.kv_cache_bytes:
            return 0
        return resident + self.decode_weights_bytes + self.kv_cache_copies * self.kv_cache_bytes

    @property
    def total_bytes(self) -> int:
        return max(self.train_peak_bytes, self.sampling_peak_bytes, self.params_bytes)

    @property
    def fits(self) -> bool:
        return not self.blocked and self.total_bytes <= USABLE_FRACTION * self.device_memory_bytes

    def terms(self) -> dict[str, int]:
        return {"params": self.params_bytes, "optimizer": self.optimizer_bytes,
                "gradients": self.gradients_bytes, "activations": self.activations_bytes,
                "prestep": self.prestep_bytes, "reference": self.reference_bytes, "decode_weights": self.decode_weights_bytes,
                "kv_cache": self.kv_cache_bytes}

    def as_json(self) -> dict[str, Any]:
        out = {f"{k}_bytes": v for k, v in self.terms().items()}
        out.update(stage=self.stage, kind=self.kind, mesh=self.mesh,
                   train_peak_bytes=self.train_peak_bytes,
                   sampling_peak_bytes=self.sampling_peak_bytes, total_bytes=self.total_bytes,
                   device=self.device, device_memory_bytes=self.device_memory_bytes,
                   usable_bytes=int(USABLE_FRACTION * self.device_memory_bytes),
                   fits=self.fits, blocked=self.blocked, sampling_calls=self.sampling_calls,
                   kv_cache_copies=self.kv_cache_copies, sampler=self.sampler,
                   largest_buffer={"name": self.largest_buffer[0],
                                   "bytes": self.largest_buffer[1]})
        if self.compiled:
            out["compiled"] = self.compiled
        return out


# ----------------------------------------------------------------------------- closed forms

def shard_bytes(x: jax.ShapeDtypeStruct) -> int:
    """Bytes of one device's shard of an abstract array with a sharding."""
    return math.prod(x.sharding.shard_shape(x.shape)) * x.dtype.itemsize


def tree_shard_bytes(tree: Any) -> int:
    return sum(shard_bytes(x) for x in jax.tree.leaves(tree))


def _axis(mesh: Any, names: tuple[str, ...], size: int) -> int:
    """How many ways a dimension of `size` with logical axis `names[0]` is split on mesh."""
    spec = parallel.logical_to_spec(names, (size,), mesh)[0]
    axes = () if spec is None else (spec,) if isinstance(spec, str) else spec
    return math.prod(mesh.shape[a] for a in axes)


def _attention_scores(rows: int, length: int, heads: int) -> int:
    """Score entries of `llama.causal_attention` over rows of `length` (query blocks that
    see the keys up to their end)."""
    block = max(_QUERY_BLOCK, -(-length // _QUERY_BLOCKS))
    if length <= block:
        return rows * heads * length * length
    ends = range(block, length + block, block)
    return rows * heads * sum(min(block, length - (end - block)) * min(end, length)
                              for end in ends)


def activation_bytes(config: ModelConfig, rows: int, length: int, chunk_size: int,
                     mesh: Any) -> int:
    """Closed-form activations of one training forward + backward of `rows` rows (this
    device's share) of `length` positions under `config.remat_policy`: what each layer keeps
    for the backward pass, the working set of one layer recomputed in the backward pass, the
    `[rows, length, length]` attention mask, the embeddings and final hidden states, and one
    chunk of float32 vocabulary logits (the loss projects `chunk_size` positions at a time)."""
    c = jax.numpy.dtype(config.dtype).itemsize
    heads = config.num_heads // _axis(mesh, ("heads",), config.num_heads)
    kv_heads = config.num_kv_heads // _axis(mesh, ("kv_heads",), config.num_kv_heads)
    mlp = config.intermediate_size // _axis(mesh, ("mlp",), config.intermediate_size)
    vocab = config.vocab_size // _axis(mesh, ("vocab",), config.vocab_size)
    tokens, h, d = rows * length, config.hidden_size, config.head_dim
    layer_input = tokens * h * c
    projections = tokens * ((heads + 2 * kv_heads) * d + heads * d + 2 * h + 3 * mlp) * c
    scores = _attention_scores(rows, length, heads)
    everything = projections + 2 * tokens * h * 4 + scores * (4 + c)  # norms in float32
    kept = {"none": everything, "full": layer_input,
            "dots": layer_input + projections + scores * 4,
            "dots_no_batch": layer_input + projections}[config.remat_policy]
    working = 0 if config.remat_policy == "none" else 2 * everything
    mask = rows * length * length  # bool
    ends = 3 * tokens * h * c + 3 * rows * min(chunk_size, length) * vocab * 4
    return config.num_layers * kept + working + mask + ends


def forward_bytes(config: ModelConfig, rows: int, length: int, chunk_size: int,
                  mesh: Any) -> int:
    """A forward pass without gradient (a pre-step's log-probs): one layer's working set,
    the hidden states, the mask and one logits chunk."""
    no_remat = config.replace(remat_policy="none", num_layers=1)
    return activation_bytes(no_remat, rows, length, chunk_size, mesh)


def decode_weight_bytes(config: ModelConfig, mesh: Any) -> int:
    """Per device: the layer weights in the compute dtype with `embed` gathered (split over
    `tensor` only), plus the embedding / LM head in the parameter dtype split over the
    vocabulary (what `llama.decode_params` builds for every sampler call)."""
    c = jax.numpy.dtype(config.dtype).itemsize
    p = jax.numpy.dtype(config.param_dtype).itemsize
    h, i, d = config.hidden_size, config.intermediate_size, config.head_dim
    qkv = h * (config.num_heads + 2 * config.num_kv_heads) * d // _axis(
        mesh, ("kv_heads",), config.num_kv_heads)
    o = config.num_heads * d * h // _axis(mesh, ("heads",), config.num_heads)
    mlp = 3 * h * i // _axis(mesh, ("mlp",), i)
    layer = (qkv + o + mlp) * c + 2 * h * p
    tables = 1 if config.tie_word_embeddings else 2
    vocab = tables * config.vocab_size * h * p // _axis(mesh, ("vocab",), config.vocab_size)
    return config.num_layers * layer + vocab


def batch_shards(mesh: Any, rows: int) -> int:
    return _axis(mesh, ("batch",), rows)


def configured_algorithm(config: Any, kind: str) -> tuple[Any, Any]:
    """(the stage's algorithm with its config checked, the config it was checked with). The
    plan reads no data, so the checks run with `data.train` standing in for an empty file
    and without evaluation data or a model directory."""
    import tempfile

    from ml_collections import ConfigDict

    from jaxreason.algorithms import get_algorithm
    from jaxreason.train.run import check_config

    algorithm = get_algorithm(kind)()
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as stand_in:
        checked = ConfigDict(config.to_dict())
        checked.data.train, checked.data.generator = stand_in.name, None
        checked.model.path, checked.eval.data = None, None
        check_config(checked)
        algorithm.check_config(checked)
    return algorithm, checked


def optimizer_and_tree(config: Any, work: Workload) -> tuple[Any, Any, Any]:
    """What the lifecycle trains with: (optimizer, schedule, parameter tree) of the stage's
    algorithm (`Algorithm.optimizer`, `Algorithm.param_tree`); AdamW over the language model
    for stages that only sample."""
    from jaxreason.train.optim import make_optimizer
    from jaxreason.train.state import LANGUAGE_MODEL

    steps = max(1, int(config.train.num_steps))
    if not work.train_rows:
        return (*make_optimizer(config.optim, steps), LANGUAGE_MODEL)
    algorithm, checked = configured_algorithm(config, work.kind)
    return (*algorithm.optimizer(checked, steps * algorithm.updates_per_step),
            algorithm.param_tree)


def plan_stage(stage: str, config: Any, model_config: ModelConfig, mesh: Any, work: Workload,
               device: str) -> Plan:
    """The closed-form plan of one stage (see the module docstring)."""
    from jaxreason.sampling.sampler import batch_bucket, prompts_within_budget
    from jaxreason.sampling.sampler import batch_shards as sampler_shards
    from jaxreason.train.state import abstract_state

    if device not in DEVICE_MEMORY:
        raise ConfigError(f"--dry_run_device: {device!r} is not one of {sorted(DEVICE_MEMORY)}")
    notes: list[str] = []
    blocked = ""
    optimizer, _, tree = optimizer_and_tree(config, work)
    state = abstract_state(model_config, optimizer, mesh, tree)
    params = tree_shard_bytes(state.params)
    buffers = [(f"params{jax.tree_util.keystr(k)}", shard_bytes(x))
               for k, x in jax.tree_util.tree_flatten_with_path(state.params)[0]]
    training = work.train_rows > 0
    optimizer_bytes = tree_shard_bytes(state.opt_state) if training else 0
    gradients = activations = prestep = reference = 0
    if training:
        moments = optax.tree_utils.tree_get(state.opt_state, "mu")  # one moment per trainable
        one = tree_shard_bytes(moments) if moments is not None else params
        gradients = one * (2 if work.microbatches > 1 else 1)
        shards = batch_shards(mesh, work.train_rows)
        split = work.microbatches * math.prod(mesh.shape[a] for a in ("data", "fsdp"))
        if work.train_rows % split:
            blocked = (f"{work.train_rows} rows per update do not split into "
                       f"train.num_microbatches ({work.microbatches}) x mesh data*fsdp "
                       f"({split // work.microbatches}): the run would stop at its first step")
            notes.append(f"{blocked}; memory planned as if they did")
        rows = max(1, -(-work.train_rows // split))
        chunk = int(config.train.logprob_chunk_size)
        activations = activation_bytes(model_config, rows, work.row_length, chunk, mesh)
        if work.prestep_forwards:  # old / reference log-probs, one micro-batch at a time
            step_rows = -(-work.step_rows // split)
            prestep = forward_bytes(model_config, step_rows, work.row_length, chunk, mesh)
        reference = params if work.reference_model else 0
    else:
        notes.append("no training in this stage: parameters only (no optimizer state)")
    kv = decode = calls = 0
    if work.sample_prompts:
        n = work.samples_per_prompt
        budget = int(config.sampling.max_kv_cache_bytes or 0)
        shards = sampler_shards(mesh)

        def padded(prompts: int) -> int:
            return batch_bucket(prompts, n, shards)

        per_call = work.sample_prompts
        if budget:
            per_call = prompts_within_budget(model_config, work.sample_prompts, n,
                                             work.prompt_tokens, work.new_tokens, budget,
                                             padded, mesh)
        calls = -(-work.sample_prompts // per_call)
        kv = sampling_cache_bytes(model_config, padded(per_call), n, work.prompt_tokens,
                                  work.new_tokens, mesh)
        decode = decode_weight_bytes(model_config, mesh)
        layers = 1 if model_config.scan_layers else model_config.num_layers
        # the largest key buffer: the rows' own, or (n > 1) the shared prompt prefix's
        parts = ([(padded(per_call), work.prompt_tokens + work.new_tokens)] if n == 1 else
                 [(padded(per_call), work.prompt_tokens), (padded(per_call) * n, work.new_tokens)])
        keys = max(cache_bytes_per_device(model_config, rows, slots, mesh)
                   for rows, slots in parts) // 2
        buffers.append(("kv_cache (keys of " + ("all layers, stacked)" if layers == 1
                                                 else "one layer)"), keys // layers))
    largest = max(buffers, key=lambda b: b[1])
    copies = SCAN_CACHE_COPIES if model_config.scan_layers else 1
    return Plan(stage, work.kind, dict(mesh.shape), params, optimizer_bytes, gradients,
                activations, prestep, reference, decode, kv, copies, calls, largest, device,
                DEVICE_MEMORY[device], notes, blocked=blocked, sampler=work.sampler)
