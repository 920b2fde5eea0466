"""Search at test time over steps, and sampling that stops once the vote is clear.

- `step_beam_search`: keep `width` partial solutions per problem; each round, extend every
  open one by `branching` sampled steps (one `generation.continue_steps` call for all beams
  of all problems: a step ends at the delimiter), score the candidates and keep the best
  `width`. A beam is finished at EOS (or when a step runs out of its token budget). The scorer
  is pluggable: the policy's own mean token log-probability over the whole partial solution
  (default), or any `scorer(problem_index, text) -> float` (a reward function, a process
  reward model, a judge), or a `batch_scorer([(problem_index, text), ...]) -> scores` called
  once per round on every candidate of every problem (a reward model's batched forward:
  `evaluation.reward_scoring.RewardModelScorer.beam_scorer`). Returns the best finished (else best open) beam per problem and
  the tokens generated, for comparisons at matched tokens.
- `adaptive_self_consistency`: sample in rounds of `chunk` per problem and stop a problem once
  its leading answer holds at least `threshold` of the votes (after `min_samples`), or at
  `max_samples`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Hashable, Sequence

import numpy as np

from jaxreason.evaluation.estimators import majority_vote
from jaxreason.sampling.params import FINISH_STOP_STRING, SamplingParams

TextScorer = Callable[[int, str], float]
BatchScorer = Callable[[Sequence[tuple[int, str]]], Sequence[float]]


@dataclasses.dataclass(frozen=True)
class BeamSettings:
    """width (N beams kept), branching (M steps sampled per beam and round), rounds (steps at
    most), delimiter (the step's stop strings), max_step_tokens, temperature / top_p of the
    step samples, seed."""

    width: int = 4
    branching: int = 4
    rounds: int = 8
    delimiter: tuple[str, ...] = ("\n\n",)
    max_step_tokens: int = 128
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0


@dataclasses.dataclass
class Beam:
    tokens: list[int]
    text: str
    logprob_sum: float
    finished: bool

    @property
    def mean_logprob(self) -> float:
        return self.logprob_sum / max(len(self.tokens), 1)


@dataclasses.dataclass
class SearchResult:
    """texts: the chosen solution per problem; tokens_generated: `[problems]` every token
    sampled for that problem (all candidates, kept or not); beams: the final beams."""

    texts: list[str]
    tokens_generated: np.ndarray
    beams: list[list[Beam]]


def step_beam_search(sampler: Any, prompts: Sequence[Sequence[int]], settings: BeamSettings,
                     scorer: TextScorer | None = None, params: Any = None,
                     batch_scorer: BatchScorer | None = None) -> SearchResult:
    """See the module docstring. prompts: token ids per problem."""
    if batch_scorer is not None:
        if scorer is not None:
            raise ValueError("give scorer or batch_scorer, not both")
        scorer = _CachedScorer(batch_scorer)
    from jaxreason.generation import continue_steps

    beams: list[list[Beam]] = [[Beam([], "", 0.0, False)] for _ in prompts]
    generated = np.zeros(len(prompts), np.int64)
    for round_index in range(settings.rounds):
        open_beams = [(p, b) for p, bs in enumerate(beams) for b in bs if not b.finished]
        if not open_beams:
            break
        prefixes = [list(prompts[p]) + b.tokens for p, b in open_beams]
        sampling = SamplingParams(temperature=settings.temperature, top_p=settings.top_p,
                                  n=settings.branching, max_new_tokens=settings.max_step_tokens,
                                  stop=settings.delimiter,
                                  seed=(settings.seed * 1_000_003 + round_index) % 2 ** 31)
        steps = continue_steps(sampler, prefixes, sampling, params=params)
        candidates: list[list[Beam]] = [[b for b in bs if b.finished] for bs in beams]
        for r in range(steps.num_rows):
            p, parent = open_beams[int(steps.prompt_index[r])]
            length = int(steps.lengths[r])
            generated[p] += length
            tokens = parent.tokens + steps.token_ids(r)
            # the beam's text decodes all its tokens: a step's last token may run past the
            # delimiter, so concatenating cut step texts would drop characters
            child = Beam(tokens, _decode(sampler, tokens),
                         parent.logprob_sum + float(steps.raw_logprobs[r, :length].sum()),
                         finished=int(steps.finish_codes[r]) != FINISH_STOP_STRING)
            candidates[p].append(child)
        if isinstance(scorer, _CachedScorer):
            scorer.prefetch([(p, b.text) for p, cands in enumerate(candidates) for b in cands])
        for p, cands in enumerate(candidates):
            if any(not b.finished for b in cands) or len(cands) > settings.width:
                cands = _dedupe(cands)
                scores = [_score(scorer, p, b) for b in cands]
                order = sorted(range(len(cands)), key=lambda i: -scores[i])
                beams[p] = [cands[i] for i in order[: settings.width]]
            else:
                beams[p] = cands
    texts = []
    if isinstance(scorer, _CachedScorer):
        scorer.prefetch([(p, b.text) for p, bs in enumerate(beams) for b in bs])
    for p, bs in enumerate(beams):
        finished = [b for b in bs if b.finished] or bs
        texts.append(max(finished, key=lambda b: _score(scorer, p, b)).text)
    return SearchResult(texts, generated, beams)


def _decode(sampler: Any, tokens: list[int]) -> str:
    if sampler.tokenizer is None:
        return ""
    return sampler.tokenizer.decode(tokens, skip_special_tokens=True,
                                    clean_up_tokenization_spaces=False)


def _score(scorer: TextScorer | None, problem: int, beam: Beam) -> float:
    return beam.mean_logprob if scorer is None else float(scorer(problem, beam.text))


class _CachedScorer:
    """A batch scorer seen as a `TextScorer`: `prefetch` scores every new (problem, text) in
    one call; lookups then read the cache."""

    def __init__(self, batch_scorer: BatchScorer) -> None:
        self.batch_scorer = batch_scorer
        self.cache: dict[tuple[int, str], float] = {}

    def prefetch(self, items: Sequence[tuple[int, str]]) -> None:
        new = list(dict.fromkeys(i for i in items if i not in self.cache))
        if new:
            self.cache.update(zip(new, (float(s) for s in self.batch_scorer(new))))

    def __call__(self, problem: int, text: str) -> float:
        if (problem, text) not in self.cache:
            self.prefetch([(problem, text)])
        return self.cache[(problem, text)]


def _dedupe(beams: list[Beam]) -> list[Beam]:
    seen, out = set(), []
    for b in beams:
        key = tuple(b.tokens)
        if key not in seen:
            seen.add(key)
            out.append(b)
    return out


@dataclasses.dataclass
class AdaptiveResult:
    """answers: the majority answer per problem; samples_used / tokens_generated: `[problems]`;
    picks: for each problem, (row texts, grades) of its samples."""

    answers: list[Hashable | None]
    correct: np.ndarray
    samples_used: np.ndarray
    tokens_generated: np.ndarray


def adaptive_self_consistency(sampler: Any, task: Any, records: Sequence[Any],
                              prompts: Sequence[Sequence[int]], *, threshold: float = 0.6,
                              chunk: int = 4, min_samples: int = 4, max_samples: int = 32,
                              temperature: float = 1.0, max_new_tokens: int = 256,
                              stop: Sequence[str] = (), seed: int = 0, params: Any = None,
                              grading_workers: int | None = 0) -> AdaptiveResult:
    """See the module docstring. The answer of a sample is the grader's extracted answer; a
    problem's result is correct when its majority answer is one the grader accepted."""
    from jaxreason.generation import sample_and_grade

    n = len(prompts)
    answers: list[list[Any]] = [[] for _ in range(n)]
    correct_of: list[dict[Any, bool]] = [{} for _ in range(n)]
    tokens = np.zeros(n, np.int64)
    open_problems = list(range(n))
    round_index = 0
    while open_problems:
        out = sample_and_grade(
            sampler, [prompts[p] for p in open_problems], [records[p] for p in open_problems],
            SamplingParams(temperature=temperature, n=chunk, max_new_tokens=max_new_tokens,
                           stop=tuple(stop), seed=(seed * 1_000_003 + round_index) % 2 ** 31),
            task=task, params=params, num_workers=grading_workers)
        for r in range(out.num_rows):
            p = open_problems[int(out.prompt_index[r])]
            answer = out.grades[r].extracted
            answers[p].append(answer)
            tokens[p] += int(out.lengths[r])
            if answer is not None:
                correct_of[p][answer] = correct_of[p].get(answer, False) or bool(out.correct[r])
        still = []
        for p in open_problems:
            votes = [a for a in answers[p] if a is not None]
            leader = majority_vote(votes)
            share = votes.count(leader) / len(answers[p]) if votes else 0.0
            if len(answers[p]) < max_samples and not (len(answers[p]) >= min_samples
                                                      and share >= threshold):
                still.append(p)
        open_problems = still
        round_index += 1
    winners = [majority_vote(a) for a in answers]
    correct = np.array([w is not None and correct_of[p].get(w, False)
                        for p, w in enumerate(winners)])
    return AdaptiveResult(winners, correct, np.array([len(a) for a in answers]), tokens)
