"""Reward-model training: outcome (ORM), Bradley-Terry and process (PRM) reward models.

One algorithm for the three kinds (`reward_model.kind`), run by the one lifecycle
(`train.run`): the trained parameters are the decoder plus a scalar head
(`model/value_head.py`, its `ParamTree`), started from `model.path` (a policy's export: its
transformer under a fresh head; or a reward model's export: both) or a preset's random
weights, and exported as a Hugging Face `*ForTokenClassification` directory with the
tokenizer and `reward_model.json` (kind, prompt rendering, step delimiter), which is all
`evaluation.reward_scoring.RewardModelScorer` needs to score with it.

Data (`data.train`, read and tokenized whole before training by `data.reward_data`; a
malformed record names its file, line and field):

- `orm`: graded samples `{prompt, completion, correct}` (`stage:sample.samples`), BCE at the
  solution's last token (`losses_rm.reward_bce`);
- `bt`: pairs `{prompt, chosen, rejected}` (`stage:pairs.pairs`, the DPO pair file),
  Bradley-Terry at each response's last token (`losses_rm.reward_bt`), pairs kept whole in a
  row as for DPO (`rows.pair_rows`);
- `prm`: step records `{prompt, steps, labels}` (`stage:prm_labels.steps`, labels from the
  search trees' rollouts), BCE at each step's last token (`rows.score_rows`).

Batches are packed (first fit) from a shuffled, sharded Grain dataset of record indices whose
iterator state is checkpointed with the state (`data.pairs.pair_batches`, the DPO batcher), so
a resumed run sees the same batches. The held-out ranking figures (AUC) come from the
`rm_eval` stage (`evaluation/reward_eval.py`), not from the lifecycle's task evaluator.
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
                                       one_of, position_batches)
from jaxreason.data import reward_data
from jaxreason.model import value_head
from jaxreason.train.errors import ConfigError
from jaxreason.train.state import ParamTree
from jaxreason.train.step import ParamsLoss

log = logging.getLogger(__name__)

INFO_FILE = "reward_model.json"  # in the export: what the scorer needs to know
AGGREGATIONS = ("last", "min", "product")


def reward_model_tree(head_std: float) -> ParamTree:
    """The parameter tree of a reward model (backbone + scalar head)."""
    return ParamTree(shapes=value_head.param_shapes, logical_axes=value_head.param_logical_axes,
                     init=functools.partial(_random_init, head_std=head_std))


def _random_init(config: Any, rng: jax.Array, *, head_std: float) -> Any:
    return value_head.init_params(config, rng, head_std=head_std)


def reward_format(config: Any) -> reward_data.RewardFormat:
    return reward_data.RewardFormat(chat=bool(config.data.chat), add_bos=bool(config.data.add_bos),
                                    max_length=int(config.data.max_length))


class RewardModel(Algorithm):
    name = "reward_model"

    def check_config(self, config: Any) -> None:
        r = config.reward_model
        one_of("reward_model.kind", r.kind, reward_data.KINDS)
        one_of("reward_model.aggregation", r.aggregation, AGGREGATIONS)
        if r.head_std < 0:
            raise ConfigError(f"reward_model.head_std: must be >= 0, got {r.head_std}")
        check_record_file_source(config, "reward_model",
                                 f"the {r.kind} records (e.g. {_EXAMPLE_SOURCE[r.kind]!r})")
        self.config, self.kind, self.fmt = config, r.kind, reward_format(config)
        self.param_tree = reward_model_tree(float(r.head_std))

    def load_data(self, config: Any) -> Data:
        return Data([], None)  # held-out ranking: the rm_eval stage

    def tokenizer_texts(self) -> list[str]:
        return reward_data.reward_texts(self.config.data.train, self.kind)

    def prepare(self, ctx: RunContext) -> Any:
        from jaxreason.algorithms.sft import check_batch_layout

        c = ctx.config
        self.rows = check_batch_layout(c, ctx.mesh)
        try:
            self.items, self.skipped = reward_data.load_reward_items(
                c.data.train, self.kind, ctx.tokenizer, self.fmt)
        except reward_data.RewardDataError as e:
            raise ConfigError(f"data.train: {e}") from None
        if self.skipped:
            log.warning("reward_model: %d records of %s longer than data.max_length skipped",
                        self.skipped, c.data.train)
        self.positions = [reward_data.item_positions(item) for item in self.items]
        self.iterator, steps = position_batches(c, self.positions, self.rows)
        self._num_steps = steps
        log.info("reward_model (%s): %d records from %s, %d steps", self.kind, len(self.items),
                 c.data.train, steps)
        return self.iterator

    @property
    def num_steps(self) -> int:
        return self._num_steps

    @property
    def row_length(self) -> int:
        return int(self.config.data.max_length)

    def loss(self, ctx: RunContext) -> ParamsLoss:
        name = "reward_bt" if self.kind == "bt" else "reward_bce"
        loss_fn = functools.partial(losses.get_loss(name), config=ctx.model_config)
        return lambda params, batch: loss_fn(params, batch=batch)

    def initial_params(self, ctx: RunContext) -> Any:
        """`model.path`'s transformer (and head, if it is a reward model) on the mesh."""
        if not ctx.config.model.path:
            return None
        rng = jax.random.fold_in(jax.random.key(int(ctx.config.seed)), 2)
        return value_head.load_pretrained(ctx.config.model.path, ctx.model_config,
                                          mesh=ctx.mesh, rng=rng,
                                          head_std=float(ctx.config.reward_model.head_std))

    def export(self, ctx: RunContext, params: Any, directory: str) -> None:
        from jaxreason.search.stages import _delimiters

        c = ctx.config
        value_head.save_pretrained(directory, ctx.model_config, params,
                                   dtype=c.checkpoint.export_dtype)
        if jax.process_index() == 0:
            ctx.tokenizer.save_pretrained(directory)
            info = {"kind": self.kind, "aggregation": c.reward_model.aggregation,
                    "delimiters": list(_delimiters(c.reward_model.delimiter)),
                    "chat": bool(c.data.chat),
                    "add_bos": bool(c.data.add_bos), "max_length": int(c.data.max_length)}
            with open(os.path.join(directory, INFO_FILE), "w") as f:
                json.dump(info, f, indent=2)

    def next_batch(self, state: Any) -> dict[str, Any] | None:
        from jaxreason.data.rows import pair_rows, score_rows

        plan = next(self.iterator, None)
        if plan is None:
            return None
        ids, length = plan["pair_ids"], int(self.config.data.max_length)
        chosen = [self.items[i] for i in ids]
        if self.kind == "bt":
            batch = pair_rows(chosen, self.rows, length, placements=plan["placements"])
            del batch["ref_logps"]
        else:
            batch = score_rows(chosen, self.rows, length, placements=plan["placements"])
        batch["example_ids"] = np.asarray([item["example_id"] for item in chosen], np.int64)
        batch["host_metrics"] = {"records_per_step": float(len(ids))}
        return batch


_EXAMPLE_SOURCE = {"orm": "stage:sample.samples", "bt": "stage:pairs.pairs",
                   "prm": "stage:prm_labels.steps"}


def train(config: Any, workdir: str) -> dict[str, Any]:
    """The "reward_model" trainer."""
    from jaxreason.train.run import run

    return run(config, workdir, "reward_model")
