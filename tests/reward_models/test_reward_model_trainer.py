"""The reward_model trainer through the one lifecycle: config errors name the key; a PRM
trains, exports a directory the scorer loads, and the scorer's step scores are the head's
values of each sequence alone; batched and per-item scorers give the same beam search.
Slow: every kind learns its toy task; a resumed run ends where an uninterrupted one does."""

from __future__ import annotations

import json
import pathlib
import sys

import jax
import numpy as np
import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "sampling"))

import rm_toys  # noqa: E402
import tiny_rm_config  # noqa: E402

from jaxreason.train import get_trainer  # noqa: E402
from jaxreason.train.errors import ConfigError  # noqa: E402


def config_for(tmp_path, kind="prm", n=64, **train):
    records = {"prm": rm_toys.prm_records, "orm": rm_toys.orm_records,
               "bt": rm_toys.bt_records}[kind](n)
    c = tiny_rm_config.get_config()
    c.reward_model.kind = kind
    c.data.train = str(rm_toys.write_jsonl(tmp_path / f"{kind}.jsonl", records))
    for key, value in train.items():
        c.train[key] = value
    return c


def train_metrics(workdir):
    out = {}
    for line in open(pathlib.Path(workdir) / "metrics.jsonl"):
        record = json.loads(line)
        if record["kind"] == "train":
            out[record["step"]] = record
    return out


@pytest.mark.parametrize("key, value, message", [
    ("reward_model.kind", "prmm", "reward_model.kind"),
    ("reward_model.aggregation", "mean", "reward_model.aggregation"),
    ("data.train", "/nonexistent.jsonl", "data.train"),
    ("data.generator", "countdown", "data.generator")])
def test_bad_config_names_the_key(tmp_path, key, value, message):
    c = config_for(tmp_path)
    section, name = key.split(".")
    c[section][name] = value
    with pytest.raises(ConfigError, match=message):
        get_trainer("reward_model")(c, str(tmp_path / "run"))


@pytest.fixture(scope="module")
def prm_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prm")
    c = config_for(tmp, num_steps=6)
    summary = get_trainer("reward_model")(c, str(tmp / "run"))
    return c, summary


def test_a_prm_run_exports_what_the_scorer_loads_and_scores_each_sequence_alone(prm_run):
    from jaxreason.evaluation.reward_scoring import RewardModelScorer
    from jaxreason.data.reward_data import scored_tokens

    c, summary = prm_run
    assert summary["status"] == "completed" and summary["step"] == 6
    assert np.isfinite(summary["train"]["loss"])
    export = summary["export"]
    info = json.load(open(pathlib.Path(export) / "reward_model.json"))
    assert info["kind"] == "prm" and info["delimiters"] == ["\n"]
    scorer = RewardModelScorer(export, batch_rows=8)
    records = rm_toys.prm_records(11, seed=5)
    prompts = [scorer.prompt_ids(r["prompt"]) for r in records]
    probs = scorer.step_scores(prompts, [r["steps"] for r in records])
    params = jax.tree.map(np.asarray, scorer.params)
    for prompt, record, p in zip(prompts, records, probs):
        tokens, ends = scored_tokens(prompt, record["steps"], scorer.tokenizer)
        values = rm_toys.values_alone(params, scorer.config, tokens)
        np.testing.assert_allclose(p, 1 / (1 + np.exp(-values[ends])), rtol=1e-4, atol=1e-5)
    texts = ["".join(r["steps"]) for r in records]
    last = scorer.solution_scores(prompts, texts, "last")
    np.testing.assert_allclose(last, [p[-1] for p in probs], rtol=1e-6)
    assert scorer.solution_scores(prompts[:1], [""])[0] == 0.0


def test_grpo_reward_and_best_of_n_use_the_same_scores(prm_run, tmp_path):
    from configs import base
    from jaxreason.algorithms.grpo import GRPO, reward_model_fn
    from jaxreason.evaluation.reward_scoring import RewardModelScorer
    from jaxreason.evaluation.test_time import best_of_n
    from jaxreason.generation import Generations

    _, summary = prm_run
    scorer = RewardModelScorer(summary["export"], batch_rows=8)
    records = [{"prompt": "Pick a:"}, {"prompt": "Pick b:"}]
    texts = ["a\n", "b\n", "a\n", "b\n"]  # two samples per prompt, prompt-major
    prompts = [scorer.prompt_ids(r["prompt"]) for r in records]
    expected = scorer.solution_scores([prompts[0]] * 2 + [prompts[1]] * 2, texts)
    rewards = reward_model_fn(summary["export"], None)([records[0]] * 2 + [records[1]] * 2,
                                                       texts)
    np.testing.assert_allclose(rewards, expected, rtol=1e-6)
    zeros = np.zeros((4, 1))
    generations = Generations(prompt_token_ids=prompts, prompt_index=np.array([0, 0, 1, 1]),
                              sample_index=np.array([0, 1, 0, 1]), tokens=zeros, logprobs=zeros,
                              raw_logprobs=zeros, lengths=np.ones(4, int),
                              finish_codes=np.zeros(4, int), stop_index=np.zeros(4, int),
                              texts=texts)
    picks = best_of_n(generations, scorer.best_of_n_scorer())
    assert picks.tolist() == [int(np.argmax(expected[:2])), 2 + int(np.argmax(expected[2:]))]
    c = base.get_config()
    c.data.train, c.grpo.task = str(tmp_path), "countdown"
    c.grpo.reward_model = str(tmp_path / "missing")
    with pytest.raises(ConfigError, match="grpo.reward_model"):
        GRPO().check_config(c)
    c.grpo.reward_model, c.grpo.reward_fn = summary["export"], "x:y"
    with pytest.raises(ConfigError, match="grpo.reward_fn / grpo.reward_model"):
        GRPO().check_config(c)


@pytest.mark.slow
def test_batched_and_per_item_reward_model_scorers_pick_the_same_beams(prm_run):
    from jaxreason.evaluation.reward_scoring import RewardModelScorer
    from jaxreason.evaluation.step_search import BeamSettings, step_beam_search
    from jaxreason.sampling import Sampler
    from sampling_helpers import spread_model, tiny_tokenizer

    _, summary = prm_run
    scorer = RewardModelScorer(summary["export"], batch_rows=8)
    tok = tiny_tokenizer()
    sampler = Sampler(spread_model("llama-tiny", len(tok), seed=5, logit_scale=4.0), tok,
                      prompt_buckets=(64,), new_token_buckets=(16,), batch_buckets=(16,))
    prompts = sampler.encode(["first we add", "the answer is"])
    rm_prompts = [scorer.prompt_ids(f"Pick {x}:") for x in "ab"]
    settings = BeamSettings(width=2, branching=2, rounds=2, delimiter=("\n",),
                            max_step_tokens=8, seed=1)
    batched = step_beam_search(sampler, prompts, settings,
                               batch_scorer=scorer.beam_scorer(rm_prompts))
    calls = scorer.forward_calls
    one = step_beam_search(sampler, prompts, settings, scorer=lambda p, text: float(
        scorer.solution_scores([rm_prompts[p]], [text])[0]))
    assert batched.texts == one.texts
    assert scorer.forward_calls - calls > calls  # one call per item vs per round


@pytest.mark.slow
@pytest.mark.parametrize("kind, floor", [("prm", 0.75), ("orm", 0.85), ("bt", 0.95)])
def test_each_kind_learns_its_toy_task(tmp_path, kind, floor):
    from jaxreason.evaluation.reward_eval import auc
    from jaxreason.evaluation.reward_scoring import RewardModelScorer

    c = config_for(tmp_path, kind, n=96, num_steps=40)
    summary = get_trainer("reward_model")(c, str(tmp_path / "run"))
    metrics = train_metrics(tmp_path / "run")
    assert metrics[40]["loss"] < 0.8 * metrics[1]["loss"]
    assert metrics[40]["accuracy"] >= floor
    scorer = RewardModelScorer(summary["export"], batch_rows=8)
    held = rm_toys.bt_records(40, seed=9)  # unseen prompts: the letter right or wrong
    prompts = [scorer.prompt_ids(r["prompt"]) for r in held] * 2
    texts = [r["chosen"] for r in held] + [r["rejected"] for r in held]
    scores = scorer.solution_scores(prompts, texts)
    assert auc(scores, [True] * 40 + [False] * 40) >= 0.8


@pytest.mark.slow
def test_a_resumed_run_ends_with_the_uninterrupted_parameters(tmp_path):
    from jaxreason.model import value_head

    whole = config_for(tmp_path, num_steps=12)
    get_trainer("reward_model")(whole, str(tmp_path / "whole"))
    first = config_for(tmp_path, num_steps=7)
    get_trainer("reward_model")(first, str(tmp_path / "split"))
    second = config_for(tmp_path, num_steps=12)
    get_trainer("reward_model")(second, str(tmp_path / "split"))
    assert "resumed" in (tmp_path / "split" / "metrics.jsonl").read_text()
    a = train_metrics(tmp_path / "whole")
    b = train_metrics(tmp_path / "split")
    assert b[12]["loss"] == pytest.approx(a[12]["loss"], rel=1e-5)
    from jaxreason.model.config import load_config

    config = load_config(str(tmp_path / "whole" / "export"))
    pa = value_head.load_pretrained(str(tmp_path / "whole" / "export"), config)
    pb = value_head.load_pretrained(str(tmp_path / "split" / "export"), config)
    for x, y in zip(jax.tree.leaves(pa), jax.tree.leaves(pb)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-5)
