"""The generation layer: step continuation (the MCTS / step-beam-search primitive), grading,
and the one text rule shared by every consumer."""

import numpy as np
import pytest

from jaxreason import generation
from jaxreason.sampling import Sampler, SamplingParams
from sampling_helpers import spread_model, tiny_tokenizer


@pytest.fixture(scope="module")
def sampler():
    tok = tiny_tokenizer()
    return Sampler(spread_model("llama-tiny", len(tok), seed=3, logit_scale=6.0), tok,
                   prompt_buckets=(16, 32, 64), new_token_buckets=(16, 32))


def _prompt(sampler, text):
    return sampler.encode([text])[0]


def test_greedy_step_equals_first_step_of_greedy_solution_and_next_step_continues_it(sampler):
    tok = sampler.tokenizer
    prompt = _prompt(sampler, "first we add the number so")
    greedy = SamplingParams(temperature=0.0, max_new_tokens=24, ignore_eos=True)
    whole = generation.generate(sampler, [prompt], greedy)
    tokens = whole.token_ids(0)
    # a delimiter that really occurs in the greedy solution: the text of its 4th token
    delimiter = tok.decode(tokens[3:4])
    assert delimiter.strip() or delimiter, "need a non-empty delimiter"
    first_end = whole.texts[0].index(delimiter) + len(delimiter)
    stepping = SamplingParams(temperature=0.0, max_new_tokens=24, ignore_eos=True,
                              stop=[delimiter])
    step = generation.continue_steps(sampler, [prompt], stepping)
    length = int(step.lengths[0])
    assert step.token_ids(0) == tokens[:length]
    assert step.texts[0] == whole.texts[0][:first_end]
    assert step.finish_reasons == ["stop"]
    # the next step, from prompt + first step, picks up exactly where the step ended
    rest = generation.continue_steps(sampler, [prompt + step.token_ids(0)],
                                     SamplingParams(temperature=0.0, ignore_eos=True,
                                                    max_new_tokens=24 - length,
                                                    stop=["\x00never"]))
    assert step.token_ids(0) + rest.token_ids(0) == tokens


def test_k_continuations_of_m_prefixes_are_in_order_and_independent_of_the_batch(sampler):
    prefixes = [_prompt(sampler, t) for t in ("the answer is", "we add", "check it works then")]
    sampling = SamplingParams(temperature=1.0, n=4, seed=7, max_new_tokens=12, stop=["\n"])
    out = generation.continue_steps(sampler, prefixes, sampling)
    assert out.num_prompts == 3 and out.num_rows == 12 and out.samples_per_prompt == 4
    np.testing.assert_array_equal(out.prompt_index, np.repeat(np.arange(3), 4))
    np.testing.assert_array_equal(out.sample_index, np.tile(np.arange(4), 3))
    assert out.prompt_token_ids == prefixes
    # a row depends only on (seed, prefix index, sample index): adding a prefix changes nothing
    more = generation.continue_steps(sampler, prefixes + [_prompt(sampler, "yes")], sampling)
    np.testing.assert_array_equal(more.tokens[:12], out.tokens)
    assert more.texts[:12] == out.texts
    # greedy rows of each prefix continue that prefix (indices point at the right prefix)
    greedy = SamplingParams(temperature=0.0, n=2, max_new_tokens=12, stop=["\n"])
    both = generation.continue_steps(sampler, prefixes, greedy)
    for i, prefix in enumerate(prefixes):
        alone = generation.continue_steps(sampler, [prefix], greedy)
        for r in np.flatnonzero(both.prompt_index == i):
            assert both.token_ids(r) == alone.token_ids(0)
    assert by_prompt_shape(out) == (3, 4)
    with pytest.raises(ValueError, match="delimiter"):
        generation.continue_steps(sampler, prefixes, SamplingParams(n=2))


def by_prompt_shape(out):
    return out.by_prompt(out.lengths).shape


@pytest.mark.parametrize("include", [True, False])
def test_generation_texts_follow_the_samplers_one_text_rule(sampler, include):
    prompts = ["the answer is", "first we add"]
    sampling = SamplingParams(temperature=1.0, n=3, seed=1, max_new_tokens=16,
                              stop=["\n", " the"], include_stop_str_in_output=include)
    results = sampler.generate(prompts, sampling)
    out = generation.generate(sampler, sampler.encode(prompts), sampling)
    assert out.texts == [r.text for r in results]
    assert [out.token_ids(r) for r in range(out.num_rows)] == [r.token_ids for r in results]
    for text, reason in zip(out.texts, out.finish_reasons):
        if reason == "stop" and not include:
            assert not text.endswith(("\n", " the"))


def test_sample_and_grade_rewards_each_row_against_its_prompts_record(sampler):
    records = [{"id": "a", "want": "the"}, {"id": "b", "want": "\n"}]
    prompts = [_prompt(sampler, "the answer is"), _prompt(sampler, "we")]

    def reward(rows, texts):  # records arrive per row, in row order
        return [float(r["want"] in t) + (10.0 if r["id"] == "b" else 0.0)
                for r, t in zip(rows, texts)]

    out = generation.sample_and_grade(sampler, prompts, records,
                                      SamplingParams(n=3, seed=2, max_new_tokens=16),
                                      reward_fn=reward)
    expected = [float(records[p]["want"] in t) + (10.0 if p == 1 else 0.0)
                for p, t in zip(out.prompt_index, out.texts)]
    np.testing.assert_array_equal(out.rewards, expected)
    assert out.correct is None and out.records == records
    assert out.row_records()[4] is records[1]
    picked = out.select([5, 0])
    assert picked.texts == [out.texts[5], out.texts[0]] and list(picked.rewards) == [
        out.rewards[5], out.rewards[0]]
    with pytest.raises(ValueError, match="records"):
        generation.sample_and_grade(sampler, prompts, records[:1], SamplingParams())


def test_task_grading_fills_grades_rewards_and_correctness(sampler):
    from jaxreason import tasks

    task = tasks.get("gsm8k")
    records = [{"question": "1+1?", "answer": "#### 2"}]
    out = generation.generate(sampler, [_prompt(sampler, "the number")],
                              SamplingParams(n=2, seed=0, max_new_tokens=8))
    out = dataclasses_replace_texts(out, ["so the answer is 2", "#### 3"])
    graded = generation.grade(out, records, task=task, num_workers=0)
    assert list(graded.correct) == [True, False]
    assert [g.correct for g in graded.grades] == [True, False]
    np.testing.assert_array_equal(graded.rewards, [g.reward for g in graded.grades])


def dataclasses_replace_texts(out, texts):
    import dataclasses

    return dataclasses.replace(out, texts=list(texts))
