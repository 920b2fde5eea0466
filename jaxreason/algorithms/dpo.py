"""Preference training on pairs: DPO, DPO + NLL (the Iterative RPO loss), IPO and ORPO.

Data: a pairs file (`data.train`: `{prompt, chosen, rejected}` records, text or chat prompts;
the `pairs` data stage writes one) is checked and tokenized whole before training
(`jaxreason.data.pairs`: errors name file, line and field; nothing is truncated). Rows hold
whole pairs (`data.rows.pair_rows`, packed with `data.packing`), so both sides of a pair share
a micro-batch and a data shard; the loss (`dpo.loss`, from the `jaxreason.losses` registry)
is a mean over pairs.

Reference: the model the run starts from (`model.path`, or the preset's initial weights) is the
frozen reference. Its summed response log-probs are computed once, by a forward pass over all
pairs before the first step (`reference_logprobs`), and stored with the pairs in
`<workdir>/pairs_with_reference.jsonl`; the rows carry them (`ref_logps`), so no second model
is in memory while training. A resumed run reads the stored values instead of computing them
again (the starting weights are gone by then). ORPO needs no reference and skips the pass.

Metrics (means over the step's pairs): loss, dpo_loss, nll (the chosen response's NLL per
token), rewards_chosen / rewards_rejected (beta x log-ratio to the reference), reward_margin,
reward_accuracy (the implicit reward prefers the chosen response), chosen_logp /
rejected_logp (summed response log-probs; their change from ref_chosen_logp /
ref_rejected_logp is the Iterative RPO paper's diagnostic) and loss_weight (pairs per step).
"""

from __future__ import annotations

import functools
import json
import logging
import os
from typing import Any

import jax
import numpy as np

from jaxreason import losses
from jaxreason.algorithms.base import (Algorithm, Data, RunContext, check_record_file_source,
                                       get_task, one_of, position_batches)
from jaxreason.data import pairs as pair_data
from jaxreason.train import build
from jaxreason.train.errors import ConfigError
from jaxreason.train.step import ParamsLoss

log = logging.getLogger(__name__)

REFERENCE_FILE = "pairs_with_reference.jsonl"  # in the workdir: the pairs + reference log-probs
REFERENCE_INFO = "reference.json"  # what the stored values were computed from

# Reference pre-passes run in this process (tests check it is one per run, none on resume).
REFERENCE_PASSES = {"count": 0}


def pair_format(config: Any) -> pair_data.PairFormat:
    d, p = config.data, config.dpo
    return pair_data.PairFormat(
        prompt_field=d.prompt_field, chosen_field=p.chosen_field,
        rejected_field=p.rejected_field, chat=bool(d.chat), add_bos=bool(d.add_bos),
        add_eos=bool(d.add_eos), max_length=int(d.max_length),
        max_prompt_tokens=int(p.max_prompt_tokens), skip_invalid=bool(p.skip_invalid_pairs))


class DPO(Algorithm):
    name = "dpo"

    def check_config(self, config: Any) -> None:
        p = config.dpo
        one_of("dpo.loss", p.loss, losses.PREFERENCE_LOSSES)
        if p.beta <= 0:
            raise ConfigError(f"dpo.beta: must be > 0, got {p.beta}")
        if p.alpha < 0 or p.orpo_lambda < 0:
            raise ConfigError("dpo.alpha / dpo.orpo_lambda: must be >= 0")
        if not 0.0 <= p.label_smoothing < 0.5:
            raise ConfigError(f"dpo.label_smoothing: must be in [0, 0.5), got "
                              f"{p.label_smoothing}")
        if p.max_prompt_tokens < 0:
            raise ConfigError(f"dpo.max_prompt_tokens: must be >= 0, got {p.max_prompt_tokens}")
        check_record_file_source(config, "dpo", "a pairs file ({prompt, chosen, rejected} "
                                 "records), e.g. 'stage:pairs.pairs'")
        self.config, self.fmt = config, pair_format(config)

    def load_data(self, config: Any) -> Data:
        eval_task = get_task(config, "eval.task") or get_task(config, "data.task")
        return Data(build.held_out_records(config, eval_task, []), eval_task)

    def tokenizer_texts(self) -> list[str]:
        return pair_data.pair_texts(self.config.data.train, self.fmt)

    def prepare(self, ctx: RunContext) -> Any:
        from jaxreason.algorithms.sft import check_batch_layout

        c = ctx.config
        self.rows = check_batch_layout(c, ctx.mesh)
        self.pairs, self.skipped = pair_data.load_pairs(c.data.train, ctx.tokenizer, self.fmt)
        if any(self.skipped.values()):
            log.warning("dpo: skipped invalid pairs of %s: %s", c.data.train, self.skipped)
        self.positions = [pair_data.pair_positions(p) for p in self.pairs]
        self.iterator, steps = position_batches(c, self.positions, self.rows)
        self._num_steps = steps
        self.ref = np.zeros((len(self.pairs), 2), np.float32)
        log.info("dpo: %d pairs from %s, %d steps", len(self.pairs), c.data.train, steps)
        return self.iterator

    @property
    def num_steps(self) -> int:
        return self._num_steps

    @property
    def row_length(self) -> int:
        return int(self.config.data.max_length)

    def loss(self, ctx: RunContext) -> ParamsLoss:
        p = ctx.config.dpo
        options = {"dpo": dict(beta=p.beta, label_smoothing=p.label_smoothing),
                   "dpo_nll": dict(beta=p.beta, alpha=p.alpha, label_smoothing=p.label_smoothing,
                                   nll_on_prompt=bool(p.nll_on_prompt)),
                   "ipo": dict(beta=p.beta),
                   "orpo": dict(orpo_lambda=p.orpo_lambda)}[p.loss]
        loss_fn = functools.partial(losses.get_loss(p.loss), config=ctx.model_config,
                                    chunk_size=ctx.config.train.logprob_chunk_size, **options)
        return lambda params, batch: loss_fn(params, batch=batch)

    def start(self, ctx: RunContext, state: Any) -> None:
        """The reference log-probs: stored ones (resume), else one pass of the starting
        weights over all pairs (they are the state's parameters at step 0)."""
        if ctx.config.dpo.loss == "orpo":
            return
        stored = read_reference(ctx.workdir, ctx.config, len(self.pairs))
        if stored is not None:
            self.ref = stored
            log.info("dpo: reference log-probs of %d pairs read from %s", len(stored),
                     ctx.workdir)
            return
        if int(jax.device_get(state.step)) != 0:
            raise ConfigError(f"dpo: resuming at step {int(jax.device_get(state.step))} but "
                              f"{os.path.join(ctx.workdir, REFERENCE_FILE)} is missing or was "
                              f"computed for other pairs; the starting weights are gone, so "
                              f"start over in a new --workdir")
        log.info("dpo: computing the reference log-probs of %d pairs (one forward pass of the "
                 "starting weights)", len(self.pairs))
        self.ref = reference_logprobs(state.params, ctx.model_config, ctx.mesh, self.pairs,
                                      rows=self.rows, length=int(ctx.config.data.max_length),
                                      packing=bool(ctx.config.data.packing),
                                      chunk_size=int(ctx.config.train.logprob_chunk_size))
        write_reference(ctx.workdir, ctx.config, self.pairs, self.ref)

    def next_batch(self, state: Any) -> dict[str, Any] | None:
        plan = next(self.iterator, None)
        if plan is None:
            return None
        ids = plan["pair_ids"]
        batch = self.rows_of(ids, plan["placements"])
        batch["example_ids"] = np.asarray([self.pairs[i]["example_id"] for i in ids], np.int64)
        batch["host_metrics"] = {"pairs_per_step": float(len(ids)),
                                 **{f"skipped_{k}": float(v) for k, v in self.skipped.items()
                                    if v}}
        return batch

    def rows_of(self, ids: list[int], placements: Any) -> dict[str, np.ndarray]:
        from jaxreason.data.rows import pair_rows

        return pair_rows([self.pairs[i] for i in ids], self.rows,
                         int(self.config.data.max_length), placements=placements,
                         ref_logps=self.ref[ids])


# ----------------------------------------------------------------------------- reference

def reference_logprobs(params: Any, model_config: Any, mesh: Any, pairs: list[dict[str, Any]],
                       *, rows: int, length: int, packing: bool = True,
                       chunk_size: int = losses.DEFAULT_CHUNK_SIZE) -> np.ndarray:
    """`[pairs, 2]` summed response log-probs of (chosen, rejected) under `params`: one
    forward pass over all pairs, packed into batches of `rows` rows per process (the
    global batch is sharded over the mesh like the training batch)."""
    from jaxreason import parallel
    from jaxreason.data.rows import pair_rows
    from jaxreason.train.step import batch_sharding

    REFERENCE_PASSES["count"] += 1
    procs = jax.process_count()
    global_rows = rows * procs

    @functools.partial(jax.jit, in_shardings=(None, batch_sharding(mesh)))
    def sums(params: Any, batch: dict[str, jax.Array]) -> jax.Array:
        logp = losses.batch_token_logprobs(params, model_config, batch, chunk_size=chunk_size)
        return losses.sequence_sums(logp * batch["loss_mask"], batch["segment_ids"])

    out = np.zeros((len(pairs), 2), np.float32)
    positions = [pair_data.pair_positions(p) for p in pairs]
    with jax.set_mesh(mesh), parallel.logical_rules(parallel.DEFAULT_RULES):
        for ids, placements in pair_data.plan_batches(positions, global_rows, length, packing):
            batch = pair_rows([pairs[i] for i in ids], global_rows, length,
                              placements=placements)
            mine = {k: v[jax.process_index() * rows:(jax.process_index() + 1) * rows]
                    for k, v in batch.items() if k != "ref_logps"}
            seq = np.asarray(parallel.to_host(sums(params, parallel.host_local_to_global(
                mine, mesh))))
            for i, (row, _, k) in zip(ids, placements):
                out[i] = seq[row, 2 * k - 1], seq[row, 2 * k]
    return out


def _fingerprint(config: Any, num_pairs: int) -> dict[str, Any]:
    return {"pairs": os.path.abspath(config.data.train), "num_pairs": num_pairs,
            "model": config.model.path, "preset": config.model.preset, "seed": config.seed,
            "format": [config.data.chat, config.data.add_bos, config.data.add_eos,
                       config.data.prompt_field, config.dpo.chosen_field,
                       config.dpo.rejected_field]}


def write_reference(workdir: str, config: Any, pairs: list[dict[str, Any]], ref: np.ndarray
                    ) -> None:
    """The pairs (their file position) with their reference log-probs, and the fingerprint
    of what they were computed from."""
    if jax.process_index() != 0:
        return
    os.makedirs(workdir, exist_ok=True)
    records = [{"where": p["where"], "ref_chosen_logp": float(r[0]),
                "ref_rejected_logp": float(r[1])} for p, r in zip(pairs, ref)]
    pair_data.write_pairs_jsonl(os.path.join(workdir, REFERENCE_FILE), records)
    with open(os.path.join(workdir, REFERENCE_INFO), "w") as f:
        json.dump(_fingerprint(config, len(pairs)), f, indent=2)


def read_reference(workdir: str, config: Any, num_pairs: int) -> np.ndarray | None:
    """Stored reference log-probs `[pairs, 2]` if they were computed for these pairs."""
    info, path = os.path.join(workdir, REFERENCE_INFO), os.path.join(workdir, REFERENCE_FILE)
    if not (os.path.exists(info) and os.path.exists(path)):
        return None
    with open(info) as f:
        if json.load(f) != json.loads(json.dumps(_fingerprint(config, num_pairs))):
            log.warning("dpo: %s was computed for other pairs or another model; ignoring it",
                        path)
            return None
    with open(path) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    if len(lines) != num_pairs:
        return None
    return np.asarray([[r["ref_chosen_logp"], r["ref_rejected_logp"]] for r in lines],
                      np.float32)


def train(config: Any, workdir: str) -> dict[str, Any]:
    """The "dpo" trainer."""
    from jaxreason.train.run import run

    return run(config, workdir, "dpo")
