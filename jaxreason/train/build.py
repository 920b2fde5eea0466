"""From a config to the objects every trainer needs: processes, mesh, tokenizer, model.

Used by the run lifecycle (`train.run`) and data stages, so that "where does
the model come from" has one answer: a Hugging Face directory (`model.path`, the real
checkpoints users train) or a named tiny architecture with random weights (`model.preset`, for
CPU recipes and tests). Errors name the config key to fix.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable, Iterable

import jax
from jax.sharding import Mesh

from jaxreason import parallel
from jaxreason.model import llama
from jaxreason.model.config import ModelConfig, is_real_architecture, load_config, preset_config
from jaxreason.model.lora import LoraConfig, parse_targets
from jaxreason.train.errors import ConfigError

log = logging.getLogger(__name__)

TOKENIZER_DIR = "tokenizer"  # inside the workdir: the tokenizer a run trained or copied


def setup_distributed(config: Any) -> None:
    """Start multi-process JAX when `distributed.num_processes` > 1 (or on a TPU pod / SLURM
    cluster when `distributed.auto` is set, where JAX discovers the arguments)."""
    d = config.distributed
    if jax.distributed.is_initialized():
        return
    if d.num_processes is not None and d.num_processes > 1:
        if d.process_id is None or d.coordinator_address is None:
            raise ConfigError("distributed: num_processes > 1 needs distributed.process_id and "
                              "distributed.coordinator_address")
        parallel.initialize_distributed(d.coordinator_address, d.num_processes, d.process_id,
                                        cpu_collectives=d.cpu_collectives)
    elif d.auto:
        parallel.initialize_distributed(cpu_collectives=d.cpu_collectives)


def build_mesh(config: Any) -> Mesh:
    try:
        return parallel.mesh_from_config(config.mesh)
    except ValueError as e:
        raise ConfigError(f"mesh: {e} ({jax.device_count()} devices available)") from None


def build_tokenizer(config: Any, workdir: str, texts: Callable[[], Iterable[str]]) -> Any:
    """The run's tokenizer, also saved in `<workdir>/tokenizer` (so a resumed run and the
    exported model use exactly the same one).

    Order: the workdir copy (resume); `tokenizer.path`; a byte-level BPE trained on `texts()`
    when `tokenizer.train_vocab_size` > 0 (deterministic, tiny recipes); `model.path`.
    """
    from jaxreason.tokenizer import load_tokenizer, train_bpe_tokenizer

    saved = os.path.join(workdir, TOKENIZER_DIR)
    if os.path.exists(os.path.join(saved, "tokenizer.json")):
        return load_tokenizer(saved)
    t = config.tokenizer
    if t.path:
        if not os.path.isdir(t.path):
            raise ConfigError(f"tokenizer.path: directory {t.path!r} does not exist")
        tokenizer = load_tokenizer(t.path)
    elif t.train_vocab_size and t.train_vocab_size > 0:
        log.info("training a %d-token BPE tokenizer on the training texts", t.train_vocab_size)
        tokenizer = train_bpe_tokenizer(texts(), t.train_vocab_size)
    elif config.model.path:
        _check_model_dir(config.model.path)
        tokenizer = load_tokenizer(config.model.path)
    else:
        raise ConfigError("tokenizer.path: set it, or model.path (a HF directory with a "
                          "tokenizer), or tokenizer.train_vocab_size > 0")
    if jax.process_index() == 0:
        tokenizer.save_pretrained(saved)
    return tokenizer


def _check_model_dir(path: str) -> None:
    if not os.path.isdir(path):
        raise ConfigError(f"model.path: directory {path!r} does not exist (expected a local "
                          f"Hugging Face checkpoint directory with config.json and safetensors)")
    if not os.path.exists(os.path.join(path, "config.json")):
        raise ConfigError(f"model.path: {path!r} has no config.json")


def build_model_config(config: Any, tokenizer: Any) -> ModelConfig:
    """The architecture (from `model.path`'s config.json or `model.preset` + `model.overrides`)
    with the numerics of `model.dtype` / `model.param_dtype` / remat / scan. A tiny preset takes
    the tokenizer's vocabulary and special tokens; a released model's keeps its own (the
    tokenizer may then be None, as in a dry run)."""
    m = config.model
    numerics = dict(dtype=m.dtype, param_dtype=m.param_dtype, remat_policy=m.remat_policy,
                    scan_layers=bool(m.scan_layers), lora=lora_config(config))
    if m.path and m.preset:
        raise ConfigError("model.path and model.preset: set only one")
    if m.path:
        _check_model_dir(m.path)
        model_config = load_config(m.path, **numerics)
    elif m.preset:
        overrides = dict(m.overrides.to_dict()) if m.overrides is not None else {}
        fields = {**overrides, **numerics}
        if tokenizer is not None and not is_real_architecture(m.preset):
            # a tiny preset takes the tokenizer's vocabulary and special tokens
            specials = dict(bos_token_id=tokenizer.bos_token_id,
                            eos_token_id=tokenizer.eos_token_id,
                            pad_token_id=tokenizer.pad_token_id)
            fields = {"vocab_size": len(tokenizer), **specials, **fields}
        try:
            model_config = preset_config(m.preset, **fields)
        except TypeError as e:
            raise ConfigError(f"model.overrides: {e}") from None
    else:
        raise ConfigError("model: set model.path (a Hugging Face directory) or model.preset "
                          "(a named architecture: a tiny one or a released model's)")
    if tokenizer is not None and len(tokenizer) > model_config.vocab_size:
        raise ConfigError(f"model: the tokenizer has {len(tokenizer)} tokens but the model's "
                          f"vocabulary has {model_config.vocab_size}")
    return model_config


def lora_config(config: Any) -> LoraConfig | None:
    """The adapters of `model.lora` (None when `model.lora.rank` is 0: full fine-tuning)."""
    section = config.model.get("lora")
    if section is None or not section.rank:
        return None
    try:
        return LoraConfig(rank=int(section.rank), alpha=float(section.alpha),
                          targets=parse_targets(section.targets),
                          quantization=section.quantization,
                          quantization_block=int(section.quantization_block))
    except ValueError as e:
        raise ConfigError(f"model.{e}") from None


def initial_params(config: Any, model_config: ModelConfig, mesh: Mesh) -> llama.Params | None:
    """Pretrained parameters placed on the mesh (`model.path`), or None: the train state then
    initializes random parameters directly in their sharded layout."""
    if not config.model.path:
        return None
    from jaxreason.model.model import load_pretrained

    log.info("loading %s", config.model.path)
    model = load_pretrained(config.model.path, dtype=model_config.dtype,
                            param_dtype=model_config.param_dtype, mesh=mesh,
                            remat_policy=model_config.remat_policy,
                            scan_layers=model_config.scan_layers, lora=model_config.lora,
                            lora_seed=int(config.seed))
    return model.params


def generated_records(config: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, held-out) records of `data.generator` (CPU recipes that make their own data)."""
    from jaxreason.data import synthetic

    try:
        return synthetic.generate(config.data.generator, config.data.generator_options.to_dict(),
                                  config.seed)
    except KeyError as e:
        raise ConfigError(f"data.generator: {e.args[0]}") from None


def held_out_records(config: Any, task: Any, generated: list[dict[str, Any]]
                     ) -> list[dict[str, Any]]:
    """The records evaluation grades: `eval.data` if set, else the generator's held-out set;
    at most `eval.num_examples` of them."""
    held_out = generated
    if config.eval.data:
        if task is None:
            raise ConfigError("eval.data: grading held-out records needs eval.task (or "
                              "data.task / grpo.task)")
        held_out = task.load_records(config.eval.data)
    if config.eval.num_examples and config.eval.num_examples > 0:
        held_out = held_out[: config.eval.num_examples]
    return held_out


def run_outputs(config: Any, workdir: str, num_steps: int) -> tuple[Any, Any]:
    """(Checkpointer in `<workdir>/checkpoints`, MetricsWriter of `<workdir>`) from the
    `checkpoint` and `log` config sections; metrics are written by process 0 only."""
    from jaxreason.train.checkpoint import Checkpointer
    from jaxreason.train.metrics import MetricsWriter

    checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"),
                                max_to_keep=config.checkpoint.max_to_keep,
                                async_save=bool(config.checkpoint.async_save))
    writer = MetricsWriter(workdir, total_steps=num_steps, summary_every=config.log.every,
                           enabled=jax.process_index() == 0,
                           tensorboard=bool(config.log.tensorboard),
                           progress=bool(config.log.progress))
    return checkpointer, writer
