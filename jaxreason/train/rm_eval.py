"""The `rm_eval` data stage: a trained reward model's held-out ranking and its test-time use
(`jaxreason.evaluation.reward_eval`).

- With `rm_eval.steps` (held-out PRM step records, `stage:prm_labels.steps_held_out`): the
  AUC of whole solutions under each aggregation and of single steps.
- With `rm_eval.num_problems` > 0: on the first held-out problems of `eval.data` (graded by
  `eval.task` or `data.task`), best-of-N vs step beam search from the policy `model.path`,
  both scored by the reward model, at their generated tokens (`matched_tokens`: best-of-N
  interpolated at each beam setting's tokens).

Writes `report.json` (output `report`); exports no model, so a later stage keeps the latest
model trained before it. In a pipeline, set `stages.<name>.model.path` (or
`pipeline.inherit_model = False`) so that the policy is not the reward model exported just
before.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from jaxreason.train.errors import ConfigError

log = logging.getLogger(__name__)


def _ints(key: str, value: str) -> tuple[int, ...]:
    try:
        out = tuple(int(x) for x in str(value).split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"{key}: {value!r} is not a comma-separated list of integers") from None
    if not out or min(out) < 1:
        raise ConfigError(f"{key}: {value!r}: give one or more integers >= 1")
    return out


def _beams(value: str) -> tuple[tuple[int, int], ...]:
    try:
        out = tuple((int(w), int(b)) for w, b in (p.lower().split("x") for p in
                                                    str(value).split(",") if p.strip()))
    except ValueError:
        raise ConfigError(f"rm_eval.beams: {value!r} is not a list like '2x2,4x4' "
                          f"(width x branching)") from None
    if not out or min(min(p) for p in out) < 1:
        raise ConfigError(f"rm_eval.beams: {value!r}: widths and branchings must be >= 1")
    return out


def rm_eval(config: Any, workdir: str) -> dict[str, Any]:
    """Run the stage (see the module docstring); returns its summary."""
    from jaxreason.train.data_stages import _finish, _is_writer, finished, write_json

    done = finished(workdir)
    if done is not None:
        return done
    e = config.rm_eval
    if not e.reward_model or not os.path.isdir(e.reward_model):
        raise ConfigError(f"rm_eval.reward_model: a reward-model directory is needed (e.g. "
                          f"'stage:prm.model'), got {e.reward_model!r}")
    if e.steps and not os.path.exists(e.steps):
        raise ConfigError(f"rm_eval.steps: {e.steps!r} does not exist")
    if not e.steps and int(e.num_problems) <= 0:
        raise ConfigError("rm_eval.steps / rm_eval.num_problems: nothing to evaluate (set "
                          "held-out step records, or num_problems > 0)")
    ns, beams = _ints("rm_eval.ns", e.ns), _beams(e.beams)
    from jaxreason.evaluation.reward_eval import ranking_figures
    from jaxreason.evaluation.reward_scoring import RewardModelScorer
    from jaxreason.train import build

    build.setup_distributed(config)
    mesh = build.build_mesh(config)
    scorer = RewardModelScorer(e.reward_model, mesh=mesh, batch_rows=int(e.batch_rows))
    report: dict[str, Any] = {"reward_model": e.reward_model, "kind": scorer.kind,
                              "seed": int(config.seed)}
    if e.steps:
        with open(e.steps) as f:
            records = [json.loads(line) for line in f if line.strip()]
        report["ranking"] = ranking_figures(scorer, records)
        r = report["ranking"]
        print(f"[{os.path.basename(workdir)}] held-out: {r['solutions']} solutions "
              f"({r['correct_solutions']} correct), AUC last {_fmt(r['solution_auc_last'])}, "
              f"min {_fmt(r['solution_auc_min'])}, product {_fmt(r['solution_auc_product'])}; "
              f"{r['steps']} steps, step AUC {_fmt(r['step_auc'])}", flush=True)
    if int(e.num_problems) > 0:
        report["search"] = _comparison(config, mesh, scorer, ns, beams)
        for m in report["search"]["matched_tokens"]:
            print(f"[{os.path.basename(workdir)}] beam {m['width']}x{m['branching']}: "
                  f"{m['tokens']:.0f} tokens, accuracy {m['beam_accuracy']:.3f} vs best-of-N "
                  f"(reward model) {m['best_of_n_accuracy']:.3f} at the same tokens",
                  flush=True)
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "report.json")
    if _is_writer():
        write_json(path, report)
    return _finish(workdir, {"status": "completed", "outputs": {"report": path},
                             "eval": {}, **{k: v for k, v in report.items()
                                            if k in ("ranking", "search")}})


rm_eval.outputs = ("report",)  # type: ignore[attr-defined]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _comparison(config: Any, mesh: Any, scorer: Any, ns: tuple[int, ...],
                beams: tuple[tuple[int, int], ...]) -> dict[str, Any]:
    from jaxreason import tasks
    from jaxreason.evaluation.reward_eval import ComparisonSettings, search_comparison
    from jaxreason.model.model import load_pretrained
    from jaxreason.prompting import prompt_token_ids, record_prompt
    from jaxreason.sampling import Sampler
    from jaxreason.tokenizer import load_tokenizer
    from jaxreason.train.data_stages import prompt_format

    e = config.rm_eval
    if not config.model.path or not os.path.isdir(config.model.path):
        raise ConfigError(f"model.path: best-of-N and beam search sample from a policy; set its "
                          f"directory (got {config.model.path!r})")
    name = config.eval.task or config.data.task
    if not name or not config.eval.data:
        raise ConfigError("eval.data / eval.task: the held-out problems (and the task that "
                          "grades them) of best-of-N vs beam search")
    try:
        task = tasks.get(name)
    except (KeyError, ValueError) as err:
        raise ConfigError(f"eval.task: {err.args[0]}") from None
    records = task.load_records(config.eval.data)[: int(e.num_problems)]
    tokenizer = load_tokenizer(config.tokenizer.path or config.model.path)
    fmt = prompt_format(config)
    prompts = [prompt_token_ids(record_prompt(r, task, fmt), tokenizer, fmt) for r in records]
    model = load_pretrained(config.model.path, dtype=config.model.dtype,
                            param_dtype=config.model.param_dtype, mesh=mesh)
    settings = ComparisonSettings(ns=ns, beams=beams, beam_rounds=int(e.beam_rounds),
                                  step_tokens=int(e.step_tokens),
                                  max_new_tokens=int(e.max_new_tokens),
                                  temperature=float(e.temperature), seed=int(config.seed),
                                  grading_workers=config.eval.grading_workers)
    return search_comparison(Sampler(model, tokenizer), task, records, prompts, scorer, settings)
