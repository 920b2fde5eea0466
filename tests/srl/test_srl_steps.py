"""SRL step instances: parsers, k ranges, the split by whole trajectory, file errors, the
Countdown trajectories of the solver and the data stages."""

from __future__ import annotations

import json

import pytest

from jaxreason.data import srl_steps as S
from jaxreason.data.synthetic import generate
from jaxreason.tasks import solve

TRAJ = {"id": "t1", "problem": "p", "steps": ["s1", "s2", "s3", "s4", "s5"], "final_answer": "x"}


@pytest.mark.parametrize("n", [1, 2, 3, 5, 9])
def test_n_steps_give_the_configured_instances(n):
    t = {**TRAJ, "steps": [f"step {i}" for i in range(1, n + 1)]}
    default = S.step_instances(t)
    assert [r["k"] for r in default] == list(range(2, n + 1))  # k = 2..N: N - 1 instances
    assert len(default) == n - 1
    for r in default:
        assert r["previous_steps"] == t["steps"][:r["k"] - 1]
        assert r["target_step"] == t["steps"][r["k"] - 1]
        assert r["traj_id"] == "t1" and r["id"] == f"t1#{r['k']}"
    assert [r["k"] for r in S.step_instances(t, k_start=1)] == list(range(1, n + 1))
    assert [r["k"] for r in S.step_instances(t, k_start=1, k_end=-1)] == list(range(1, n))
    assert [r["k"] for r in S.step_instances(t, k_start=2, k_end=3)] == list(range(2, min(n, 3) + 1))
    with pytest.raises(ValueError):
        S.step_instances(t, k_start=0)


def test_validation_split_is_by_whole_trajectory():
    trajectories = [{**TRAJ, "id": f"t{i}"} for i in range(200)]
    train, val = S.split_trajectories(trajectories, 0.2, seed=3)
    assert len(train) + len(val) == 200 and 20 <= len(val) <= 60
    train_ids = {r["traj_id"] for r in S.all_step_instances(train)}
    val_ids = {r["traj_id"] for r in S.all_step_instances(val)}
    assert train_ids and val_ids and not train_ids & val_ids
    # stable: the same seed gives the same split in any order; another seed another split
    again = S.split_trajectories(trajectories[::-1], 0.2, seed=3)[1]
    assert sorted(t["id"] for t in again) == sorted(t["id"] for t in val)
    assert {t["id"] for t in S.split_trajectories(trajectories, 0.2, seed=4)[1]} != \
        {t["id"] for t in val}
    assert S.split_trajectories(trajectories, 0.0)[1] == []
    assert len(S.split_trajectories(trajectories[:2], 0.01)[1]) == 1  # at least one


SOLUTION = """We solve it.

1. Add the first two: 2 + 3 = 5.
   (so far so good)
2. Multiply: 5 * 4 = 20.
3) Done: the answer is 20."""


def test_parsers():
    assert S.split_solution(SOLUTION, "numbered") == [
        "1. Add the first two: 2 + 3 = 5.\n   (so far so good)", "2. Multiply: 5 * 4 = 20.",
        "3) Done: the answer is 20."]
    assert S.split_solution("intro\nStep 1: a\nb\nstep 2. c\n## Step 3: d", "step") == [
        "Step 1: a\nb", "step 2. c", "## Step 3: d"]
    assert S.split_solution("**Set up**\na\n**Step 2: solve**\nb\n**Check:** c", "bold") == [
        "**Set up**\na", "**Step 2: solve**\nb", "**Check:** c"]
    assert S.split_solution("a\nb\n\n  \nc\n\n\nd", "blank") == ["a\nb", "c", "d"]
    assert S.split_solution("2 + 3 = 5\n\n5 * 4 = 20\n", "lines") == ["2 + 3 = 5", "5 * 4 = 20"]
    assert S.split_solution(SOLUTION, "auto") == S.split_solution(SOLUTION, "numbered")
    assert S.split_solution("one para\n\nanother", "auto") == ["one para", "another"]
    with pytest.raises(ValueError, match="unknown step parser"):
        S.split_solution("x", "nope")


def test_read_trajectories_with_steps_or_solutions(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(TRAJ) + "\n\n" + json.dumps(
        {"id": 2, "problem": "q", "solution": SOLUTION, "final_answer": "20", "source": "s1k"})
        + "\n")
    a, b = S.read_trajectories(str(path))
    assert a["steps"] == TRAJ["steps"] and b["id"] == "2" and len(b["steps"]) == 3
    assert b["meta"] == {"source": "s1k"}
    assert len(S.read_trajectories(str(path), parser="blank")[1]["steps"]) == 2


@pytest.mark.parametrize("line, message", [
    ('{"id": 1, "problem": "p"}', "line 2: field 'steps': missing"),
    ('{"problem": "p", "steps": ["a"]}', "line 2: field 'id': missing"),
    ('{"id": 1, "steps": ["a"]}', "line 2: field 'problem': missing"),
    ('{"id": 1, "problem": "", "steps": ["a"]}', "line 2: field 'problem'"),
    ('{"id": 1, "problem": "p", "steps": "a"}', "line 2: field 'steps': must be a list"),
    ('{"id": 1, "problem": "p", "steps": ["a", 3]}', "line 2: field 'steps[1]'"),
    ('{"id": 1, "problem": "p", "steps": ["a", " "]}', "line 2: field 'steps[1]'"),
    ('{"id": 1, "problem": "p", "steps": []}', "line 2: field 'steps': 0 steps"),
    ('{"id": 1, "problem": "p", "solution": 5}', "line 2: field 'solution'"),
    ('{"id": "t1", "problem": "p", "steps": ["a"]}', "line 2: field 'id': 't1' repeats"),
    ('{"id": 1, "problem": ', "line 2: not valid JSON"),
    ('[1, 2]', "line 2: a trajectory must be a JSON object"),
])
def test_bad_trajectory_files_name_file_line_and_field(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(TRAJ) + "\n" + line + "\n")
    with pytest.raises(S.TrajectoryError) as info:
        S.read_trajectories(str(path))
    assert str(path) in str(info.value) and message in str(info.value)


def test_countdown_trajectories_are_the_solver_steps():
    record = {"nums": [44, 19, 35], "target": 98}
    t = S.countdown_trajectory(record)
    solution = solve([44, 19, 35], 98, integer_only=True)
    assert t["steps"] == list(solution.steps) and t["final_answer"] == solution.expression
    assert t["meta"] == record and "44" in t["problem"] and "98" in t["problem"]
    assert all(" = " in s for s in t["steps"])
    assert S.countdown_trajectory({"nums": [1, 1, 1], "target": 97}) is None


def test_countdown_srl_generator():
    options = {"num_train": 30, "num_eval": 10, "k_start": 1, "val_fraction": 0.2}
    train, val = generate("countdown_srl", options, 0)
    assert train == generate("countdown_srl", options, 0)[0]  # deterministic
    assert len(train) + len(val) == 2 * 40  # 3 numbers: 2 steps, k = 1..2
    assert not {r["traj_id"] for r in train} & {r["traj_id"] for r in val}
    default, _ = generate("countdown_srl", {"num_train": 30, "num_eval": 10}, 0)
    assert {r["k"] for r in default} == {2}


def test_srl_steps_stage(tmp_path):
    from configs import base
    from jaxreason.train import get_trainer

    path = tmp_path / "traj.jsonl"
    with open(path, "w") as f:
        for i in range(20):
            f.write(json.dumps({**TRAJ, "id": f"t{i}"}) + "\n")
    c = base.get_config()
    c.srl.trajectories = str(path)
    c.srl.val_fraction = 0.25
    summary = get_trainer("srl_steps")(c, str(tmp_path / "steps"))
    steps = [json.loads(x) for x in open(summary["outputs"]["steps"])]
    val = [json.loads(x) for x in open(summary["outputs"]["steps_val"])]
    assert len(steps) + len(val) == 20 * 4
    assert not {r["traj_id"] for r in steps} & {r["traj_id"] for r in val}
    assert summary["num_instances"] == {"train": len(steps), "val": len(val)}

    c = base.get_config()
    records = tmp_path / "cd.jsonl"
    records.write_text("\n".join(json.dumps(r) for r in [
        {"nums": [3, 5, 7], "target": 22}, {"nums": [1, 1, 1], "target": 97},
        {"nums": [4, 6, 2], "target": 20}]) + "\n")
    c.data.train = str(records)
    c.data.chat = True
    c.srl.source = "countdown"
    c.srl.k_start = 1
    c.srl.val_fraction = 0.0
    c.srl.sft_mix = True
    summary = get_trainer("srl_steps")(c, str(tmp_path / "cd"))
    assert summary["dropped_records"] == 1
    problems = [json.loads(x) for x in open(summary["outputs"]["problems"])]
    assert problems == [{"nums": [3, 5, 7], "target": 22}, {"nums": [4, 6, 2], "target": 20}]
    sft = [json.loads(x) for x in open(summary["outputs"]["sft"])]
    assert len(sft) == 4 + 2
    assert sft[0]["completion"].endswith("\n3 * 5 = 15") and "<answer>" in sft[-1]["completion"]


def test_hard_records_keep_pass_at_n_zero():
    from jaxreason.train.srl_data import hard_records

    lines = [{"prompt_index": i, "record": {"i": i}, "correct": c}
             for i, c in [(0, False), (0, False), (1, True), (1, False), (2, False), (2, False)]]
    hard, counts = hard_records(lines, 0)
    assert hard == [{"i": 0}, {"i": 2}]
    assert [e["correct"] for e in counts] == [0, 1, 0]
    assert hard_records(lines, 1)[0] == [{"i": 0}, {"i": 1}, {"i": 2}]
