"""How good a reward model is: ranking on held-out labelled solutions, and test-time use.

- `auc(scores, labels)`: the probability that a random positive outranks a random negative
  (ties count half; the Mann-Whitney statistic from average ranks), None without both classes.
- `ranking_figures(scorer, records)`: on held-out PRM step records (`prm_labels` stage, trees
  never trained on): the AUC of whole solutions (records that end in a terminal; label = the
  terminal's grade) under each aggregation (last, min, product), and of single steps (label
  > 0.5) from the step scores.
- `search_comparison(...)`: on held-out problems, best-of-N with the reward model (and with
  the policy's mean log-prob, self-consistency and the oracle, pass@N) from one batch of
  max(N) samples, against step beam search scored by the reward model (and by the policy's
  mean log-prob) at each (width, branching), each with its generated tokens per problem; and
  for each beam setting, best-of-N with the reward model interpolated at the beam's tokens
  (linear in log tokens between the two nearest N; outside the N range: the nearest N), the
  "at matched tokens" comparison.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from jaxreason.evaluation.reward_scoring import AGGREGATIONS, RewardModelScorer


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve of `scores` for binary `labels` (ties count 1/2)."""
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels, bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), np.float64)
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    rank_sum = ranks[labels].sum()
    return float((rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives))


def ranking_figures(scorer: RewardModelScorer, records: Sequence[dict[str, Any]]
                    ) -> dict[str, Any]:
    """Held-out ranking figures of a reward model on PRM step records (module docstring)."""
    solutions = [r for r in records if r.get("terminal") and r.get("correct") is not None]
    prompt_ids = [scorer.prompt_ids(r["prompt"]) for r in records]
    step_probs = scorer.step_scores(prompt_ids, [r["steps"] for r in records])
    from jaxreason.evaluation.reward_scoring import aggregate

    out: dict[str, Any] = {"records": len(records), "solutions": len(solutions),
                           "correct_solutions": sum(1 for r in solutions if r["correct"])}
    labels = [bool(r["correct"]) for r in solutions]
    index = {id(r): i for i, r in enumerate(records)}
    for how in AGGREGATIONS:
        scores = [aggregate(step_probs[index[id(r)]], how) for r in solutions]
        out[f"solution_auc_{how}"] = auc(scores, labels)
    step_scores, step_labels = [], []
    for r, probs in zip(records, step_probs):
        step_scores.extend(probs.tolist())
        step_labels.extend(float(x) > 0.5 for x in r["labels"][: len(probs)])
    out["steps"] = len(step_scores)
    out["step_auc"] = auc(step_scores, step_labels)
    return out


@dataclasses.dataclass(frozen=True)
class ComparisonSettings:
    """ns: best-of-N sample counts; beams: (width, branching) pairs; beam_rounds; step_tokens:
    token budget of a step; max_new_tokens: budget of a best-of-N sample; temperature; seed;
    grading_workers."""

    ns: tuple[int, ...] = (4, 8, 16)
    beams: tuple[tuple[int, int], ...] = ((2, 2), (4, 4))
    beam_rounds: int = 8
    step_tokens: int = 24
    max_new_tokens: int = 160
    temperature: float = 1.0
    seed: int = 0
    grading_workers: int | None = 0


def interpolate_at(tokens: float, curve: Sequence[dict[str, float]]) -> float:
    """The accuracy of a curve of {tokens, accuracy} points at `tokens` (linear in log tokens;
    the nearest end outside the range)."""
    points = sorted((p["tokens"], p["accuracy"]) for p in curve)
    xs = np.log([max(x, 1e-9) for x, _ in points])
    ys = [y for _, y in points]
    return float(np.interp(np.log(max(tokens, 1e-9)), xs, ys))


def search_comparison(sampler: Any, task: Any, records: Sequence[Any],
                      prompts: Sequence[Sequence[int]], scorer: RewardModelScorer,
                      settings: ComparisonSettings) -> dict[str, Any]:
    """Best-of-N vs step beam search on held-out problems (module docstring)."""
    from jaxreason.evaluation.estimators import pass_at_k
    from jaxreason.evaluation.scaling import _grade_texts
    from jaxreason.evaluation.step_search import BeamSettings, step_beam_search
    from jaxreason.evaluation.test_time import (best_of_n, extracted_answer, mean_logprob,
                                                picked_correct, self_consistency)
    from jaxreason.generation import sample_and_grade
    from jaxreason.sampling import SamplingParams

    n_max = max(settings.ns)
    out = sample_and_grade(sampler, prompts, records, SamplingParams(
        temperature=settings.temperature, n=n_max, max_new_tokens=settings.max_new_tokens,
        seed=settings.seed), task=task, num_workers=settings.grading_workers)
    from jaxreason.prompting import record_prompt

    rm_prompts = [scorer.prompt_ids(record_prompt(r, task, scorer.prompt_format))
                  for r in records]
    rm_scores = scorer.best_of_n_scorer(rm_prompts)(out)
    lengths, correct = out.by_prompt(out.lengths), out.by_prompt(out.correct)
    curves: dict[str, list[dict[str, float]]] = {
        "pass@N (oracle)": [], "best-of-N (reward model)": [], "best-of-N (mean log-prob)": [],
        "self-consistency": []}
    for n in settings.ns:
        tokens = float(lengths[:, :n].sum(axis=1).mean())
        point = {"n": n, "tokens": tokens}
        curves["pass@N (oracle)"].append({**point, "accuracy": float(np.mean(
            [pass_at_k(n_max, int(c.sum()), n) for c in correct]))})
        curves["best-of-N (reward model)"].append({**point, "accuracy": float(picked_correct(
            out, best_of_n(out, lambda _: rm_scores, n)).mean())})
        curves["best-of-N (mean log-prob)"].append({**point, "accuracy": float(picked_correct(
            out, best_of_n(out, mean_logprob, n)).mean())})
        curves["self-consistency"].append({**point, "accuracy": float(picked_correct(
            out, self_consistency(out, extracted_answer, n)).mean())})
    curves["beam search (reward model)"], curves["beam search (mean log-prob)"] = [], []
    matched = []
    for width, branching in settings.beams:
        beam = BeamSettings(width=width, branching=branching, rounds=settings.beam_rounds,
                            delimiter=scorer.delimiters or ("\n",),
                            max_step_tokens=settings.step_tokens,
                            temperature=settings.temperature, seed=settings.seed)
        for name, kwargs in (("beam search (reward model)",
                              {"batch_scorer": scorer.beam_scorer(rm_prompts)}),
                             ("beam search (mean log-prob)", {})):
            result = step_beam_search(sampler, prompts, beam, **kwargs)
            accuracy = float(_grade_texts(task, records, result.texts,
                                          settings.grading_workers).mean())
            curves[name].append({"width": width, "branching": branching,
                                 "tokens": float(result.tokens_generated.mean()),
                                 "accuracy": accuracy})
        point = curves["beam search (reward model)"][-1]
        bon = interpolate_at(point["tokens"], curves["best-of-N (reward model)"])
        matched.append({"width": width, "branching": branching, "tokens": point["tokens"],
                        "beam_accuracy": point["accuracy"], "best_of_n_accuracy": bon,
                        "beam_minus_best_of_n": point["accuracy"] - bon})
    return {"problems": len(prompts), "samples_per_problem": n_max, "curves": curves,
            "matched_tokens": matched}
