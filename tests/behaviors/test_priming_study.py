"""The priming study driver (`jaxreason.train.priming_study`), its recipe and its report:
config errors name the key, every arm gets the same start and budget, arms re-run alone and a
killed study resumes, and the report's numbers are the evaluations' numbers."""

from __future__ import annotations

import json
import math
import os

import pytest

from configs import behaviors_countdown_tiny as recipe
from jaxreason.data.countdown_traces import ARMS
from jaxreason.train import pipeline, priming_report, priming_study
from jaxreason.train.errors import ConfigError


def _config(**fields):
    c = recipe.get_config()
    for key, value in fields.items():
        c[key] = value
    return c


@pytest.mark.parametrize("arms, message", [
    ("all,everything", "arms: 'everything' is not an arm"),
    ("", "arms: empty"),
    ("all,none,all", "names an arm twice")])
def test_bad_arms_are_errors_naming_the_key(arms, message):
    with pytest.raises(ConfigError, match=message):
        priming_study.parse_arms(_config(arms=arms))


def test_bad_seeds_and_rl_trainer_are_errors_naming_the_key():
    with pytest.raises(ConfigError, match="^seeds:"):
        priming_study.parse_seeds(_config(seeds="0,x"))
    assert priming_study.parse_seeds(_config(seeds="")) == [0]
    assert priming_study.parse_seeds(_config(seeds="1, 2")) == [1, 2]
    with pytest.raises(ConfigError, match="^rl_trainer:"):
        priming_study.study_pipeline(_config(rl_trainer="reinforce"), ["all"], 0)


def test_the_recipe_gives_every_arm_the_same_start_data_size_and_budget():
    c = recipe.get_config()
    assert set(recipe.ARMS) == set(ARMS) == set(priming_study.parse_arms(c))
    study = priming_study.study_pipeline(c, list(recipe.ARMS), 3)
    assert study.seed == 3 and study.trainer == "pipeline"
    assert len(pipeline.parse_stages(study.pipeline.stages)) == 3 + 2 * len(ARMS)
    primes = [study.stages[f"prime_{arm}"].to_dict() for arm in ARMS]
    rls = [study.stages[f"rl_{arm}"].to_dict() for arm in ARMS]
    for arm, prime, rl in zip(ARMS, primes, rls):
        assert prime["model"]["path"] == "stage:base.model"
        assert prime["data"]["generator_options"].pop("arm") == arm
        assert rl["model"].pop("path") == f"stage:prime_{arm}.model"
        assert rl["trainer"] == "grpo"
    assert all(p == primes[0] for p in primes) and all(r == rls[0] for r in rls)


def test_study_pipeline_runs_only_the_chosen_arms_with_the_chosen_rl_trainer():
    study = priming_study.study_pipeline(_config(rl_trainer="ppo"), ["none", "all"], 0)
    assert study.pipeline.stages == "records,tokenizer,base,prime_none,rl_none,prime_all,rl_all"
    assert study.stages.rl_all.trainer == "ppo"


def _fake_trainers(monkeypatch, calls, fail_once):
    """Stage functions that record their calls and write what the real ones declare."""
    import jaxreason.train as train_registry

    real = train_registry.get_trainer

    def make(kind):
        def fn(config, workdir):
            run_id = os.path.basename(workdir)
            calls.append(run_id)
            if run_id in fail_once:
                fail_once.remove(run_id)
                raise KeyboardInterrupt  # killed mid-stage: no summary.json
            os.makedirs(workdir, exist_ok=True)
            if kind in ("sft", "grpo"):
                return {"status": "completed", "export": os.path.join(workdir, "export")}
            outputs = {name: os.path.join(workdir, name) for name in real(kind).outputs}
            return {"status": "completed", "outputs": outputs}
        fn.outputs = getattr(real(kind), "outputs", None)
        if fn.outputs is None:
            del fn.outputs
        return fn

    monkeypatch.setattr(train_registry, "get_trainer", make)
    monkeypatch.setattr(priming_study, "priming_set_stats", lambda c, arms: {})


def test_an_arm_reruns_alone_and_a_killed_study_resumes(tmp_path, monkeypatch):
    calls: list[str] = []
    fail_once = {"rl_none"}
    _fake_trainers(monkeypatch, calls, fail_once)
    c = _config(arms="all")
    priming_study.train(c, str(tmp_path))
    assert calls == ["records", "tokenizer", "base", "prime_all", "rl_all"]
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        priming_study.train(_config(arms="all,none"), str(tmp_path))
    assert calls == ["prime_none", "rl_none"]  # finished stages are skipped
    calls.clear()
    priming_study.train(_config(arms="all,none"), str(tmp_path))
    assert calls == ["rl_none"]  # the killed stage runs again, nothing else
    calls.clear()
    priming_study.train(_config(arms="none"), str(tmp_path))
    assert calls == []


def _write_eval(stage_dir, step, results):
    """An in-training evaluation's items.jsonl: (target, completion, correct) per item."""
    directory = os.path.join(stage_dir, "eval", f"step_{step}")
    os.makedirs(directory)
    with open(os.path.join(directory, "items.jsonl"), "w") as f:
        for target, completion, correct in results:
            f.write(json.dumps({"record": {"nums": [1, 2, 3], "target": target},
                                "greedy": {"completion": completion, "correct": correct}}) + "\n")


def test_report_numbers_come_from_the_evaluations(tmp_path):
    backtrack = "\n3 + 2 = 5\n5 * 1 = 5. 5 is not 7.\nThis doesn't work, let's try a " \
                "different combination.\n3 * 2 = 6\n6 + 1 = 7\n</think>\n<answer> 3 * 2 + 1 </answer>"
    plain = "\n3 + 2 = 5\n5 * 1 = 5\n</think>\n<answer> (3 + 2) * 1 </answer>"
    for seed, (start, end) in {0: (0.0, 0.5), 1: (0.5, 1.0)}.items():
        stage = os.path.join(tmp_path, f"seed_{seed}", "rl_all")
        _write_eval(stage, 0, [(7, plain, start > 0), (7, plain, False)])
        _write_eval(stage, 8, [(7, backtrack, True), (7, plain, end == 1.0)])
        _write_eval(stage, 16, [(7, plain, False), (7, plain, False)])
    result = priming_report.write_report(str(tmp_path))
    summary = result["arms"]["all"]["summary"]
    assert summary["start_accuracy"] == (0.25, pytest.approx(math.sqrt(0.125)))
    assert summary["best_accuracy"][0] == pytest.approx(0.75)
    assert summary["final_accuracy"] == (0.0, 0.0)
    run = result["arms"]["all"]["seeds"][0]
    assert [p["step"] for p in run["points"]] == [0, 8, 16]
    assert run["points"][1]["backtracking"] == 0.5 and run["points"][1]["verification"] == 0.5
    assert run["start_counts"]["backtracking"] == 0.0
    for name in ("priming_report.md", "priming_report.json", "priming_accuracy.png",
                 "priming_behaviors.png"):
        assert os.path.getsize(os.path.join(tmp_path, name)) > 0
    table = open(os.path.join(tmp_path, "priming_report.md")).read()
    assert "| all | 0,1 | 16*,16* | 25.0 ± 35.4 | 75.0 ± 35.4 | 0.0 ± 0.0 | 35.2 | 73.6 |" in table
