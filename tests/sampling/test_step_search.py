"""Step beam search and adaptive self-consistency on the step-continuation primitive."""

import numpy as np
import pytest

from jaxreason import generation
from jaxreason.evaluation.step_search import (BeamSettings, adaptive_self_consistency,
                                              step_beam_search)
from jaxreason.sampling import Sampler, SamplingParams
from jaxreason.tasks import Grade
from sampling_helpers import spread_model, tiny_tokenizer


@pytest.fixture(scope="module")
def sampler():
    tok = tiny_tokenizer()
    return Sampler(spread_model("llama-tiny", len(tok), seed=5, logit_scale=4.0), tok,
                   prompt_buckets=(64,), new_token_buckets=(16, 64), batch_buckets=(16,))


def test_one_greedy_beam_is_the_greedy_solution_cut_into_steps(sampler):
    prompts = sampler.encode(["first we add", "the answer is"])
    whole = generation.generate(sampler, prompts, SamplingParams(temperature=0.0,
                                                                 max_new_tokens=48))
    settings = BeamSettings(width=1, branching=1, rounds=3, delimiter=("\n",),
                            max_step_tokens=16, temperature=0.0)
    result = step_beam_search(sampler, prompts, settings)
    for p in range(2):
        beam = result.beams[p][0]
        assert beam.tokens == whole.token_ids(p)[:len(beam.tokens)]
        assert whole.texts[p].startswith(result.texts[p])
        assert result.tokens_generated[p] == len(beam.tokens)


def test_beams_stay_within_width_and_the_token_budget(sampler):
    prompts = sampler.encode(["we add", "check it", "so then"])
    settings = BeamSettings(width=3, branching=2, rounds=4, delimiter=(" the", "\n"),
                            max_step_tokens=8, seed=1)
    result = step_beam_search(sampler, prompts, settings)
    assert len(result.texts) == 3
    assert all(1 <= len(bs) <= 3 for bs in result.beams)
    # round 1: 1 beam x 2 branches; later rounds: <= 3 beams x 2 branches, <= 8 tokens each
    assert np.all(result.tokens_generated <= 8 * (2 + 3 * 2 * 3))
    for bs in result.beams:
        assert len({tuple(b.tokens) for b in bs}) == len(bs)  # no duplicate beams


def test_a_custom_scorer_picks_the_beam(sampler):
    prompts = sampler.encode(["the number"])
    settings = BeamSettings(width=4, branching=4, rounds=2, delimiter=("\n",),
                            max_step_tokens=8, seed=3)

    def shortest(problem, text):
        return -len(text)

    result = step_beam_search(sampler, prompts, settings, scorer=shortest)
    finished = [b for b in result.beams[0] if b.finished] or result.beams[0]
    assert result.texts[0] == min((b.text for b in finished), key=len)


class FirstLetterTask:
    """Answer = the completion's first character; correct when it is 't'."""

    name = "first_letter"

    def grade(self, record, completion):
        answer = completion.strip()[:1] or None
        return Grade(reward=float(answer == "t"), correct=answer == "t", extracted=answer,
                     reason="", format_ok=answer is not None)


@pytest.mark.parametrize("threshold,expected", [(0.0, 4), (1.01, 12)])
def test_adaptive_self_consistency_stops_when_the_vote_is_clear(sampler, threshold, expected):
    prompts = sampler.encode(["the answer is", "we"])
    out = adaptive_self_consistency(sampler, FirstLetterTask(), [{}, {}], prompts,
                                    threshold=threshold, chunk=4, min_samples=4,
                                    max_samples=12, max_new_tokens=8, seed=2)
    assert list(out.samples_used) == [expected, expected]
    assert np.all(out.tokens_generated <= 8 * expected)
    for answer, correct in zip(out.answers, out.correct):
        assert correct == (answer == "t")
