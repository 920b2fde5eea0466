"""PRM step labels from search trees: soft / hard labels from Q or R, one record per path,
a stable split by tree, and the prm_labels stage's files."""

from __future__ import annotations

import json
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "search"))

from hand_trees import countdown_tree  # noqa: E402

from jaxreason.search.prm_labels import (LabelSettings, is_held_out, step_records,  # noqa: E402
                                         tree_step_records)


def by_leaf(records):
    return {r["leaf"]: r for r in records}


def test_soft_labels_are_success_rates_of_q_and_terminals_keep_their_grade():
    records = by_leaf(tree_step_records(countdown_tree(), LabelSettings(), prompt="p"))
    # path 1 -> 3 -> 6: Q 0.5, 0.9 under the astro rewards (+1 / -1): p = (Q + 1) / 2
    assert records[6]["steps"] == ["3 + 5 = 8\n", "8 * 2 = 16\n", "<answer> (3 + 5) * 2 </answer>\n"]
    assert records[6]["labels"] == pytest.approx([0.75, 0.95, 1.0])
    assert records[6]["correct"] is True and records[6]["terminal"] is True
    assert records[7]["labels"] == pytest.approx([0.75, 0.95, 0.0])  # a wrong answer: 0
    assert records[9]["labels"] == pytest.approx([0.2, 0.0, 0.0])  # Q -0.6, -1.0 (clipped)
    assert records[11]["labels"] == [0.0] and records[11]["prompt"] == "p"


def test_hard_labels_mark_steps_whose_success_rate_exceeds_the_threshold():
    any_success = by_leaf(tree_step_records(countdown_tree(), LabelSettings(labels="hard"), "p"))
    assert any_success[9]["labels"] == [1.0, 0.0, 0.0]  # p = 0.2 > 0
    strict = by_leaf(tree_step_records(
        countdown_tree(), LabelSettings(labels="hard", hard_threshold=0.5), "p"))
    assert strict[9]["labels"] == [0.0, 0.0, 0.0]
    assert strict[8]["labels"] == [1.0, 0.0, 0.0]  # 0.75, then Q -0.8 -> 0.1


def test_rollout_labels_read_the_nodes_own_mean_reward_not_q():
    tree = countdown_tree()
    tree["nodes"][1]["rollout_reward"] = -1.0  # Q stays 0.5
    q = by_leaf(tree_step_records(tree, LabelSettings(value="q"), "p"))
    r = by_leaf(tree_step_records(tree, LabelSettings(value="rollouts"), "p"))
    assert q[6]["labels"][0] == pytest.approx(0.75)
    assert r[6]["labels"][0] == pytest.approx(0.0)
    binary = LabelSettings(reward_correct=1.0, reward_incorrect=0.0)  # binary rewards: p = R
    assert by_leaf(tree_step_records(tree, binary, "p"))[6]["labels"][:2] == pytest.approx(
        [0.5, 0.9])


def test_one_record_per_leaf_and_terminal_only_paths_are_whole_solutions():
    tree = countdown_tree()
    tree["nodes"].append({"id": 13, "parent": 2, "text": "2 + 2 = 4\n", "depth": 2,
                          "visits": 1, "value": 0.0, "rollout_reward": 0.0, "terminal": False,
                          "answer": None, "correct": None})
    leaves = tree_step_records(tree, LabelSettings(), "p")
    assert sorted(r["leaf"] for r in leaves) == [6, 7, 8, 9, 10, 11, 12, 13]
    open_leaf = by_leaf(leaves)[13]
    assert open_leaf["terminal"] is False and open_leaf["correct"] is None
    solutions = tree_step_records(tree, LabelSettings(paths="terminal"), "p")
    assert sorted(r["leaf"] for r in solutions) == [6, 7, 8, 9, 10, 11, 12]


def test_held_out_split_is_by_whole_tree_and_stable():
    trees = []
    for i in range(40):
        tree = countdown_tree()
        tree["id"] = i
        trees.append(tree)
    train, held = step_records(trees, LabelSettings(), lambda r: "p", held_out_share=0.25,
                               seed=3)
    train_ids, held_ids = {r["tree_id"] for r in train}, {r["tree_id"] for r in held}
    assert not train_ids & held_ids and train_ids | held_ids == set(range(40))
    assert 4 <= len(held_ids) <= 18
    assert held_ids == {i for i in range(40) if is_held_out(i, 0.25, 3)}
    assert not any(is_held_out(i, 0.0, 3) for i in range(40))


def test_bad_settings_name_the_field():
    with pytest.raises(ValueError, match="labels"):
        LabelSettings(labels="fuzzy")
    with pytest.raises(ValueError, match="reward_correct"):
        LabelSettings(reward_correct=-1.0, reward_incorrect=1.0)


def test_prm_labels_stage_writes_training_and_held_out_records(tmp_path):
    from configs import base
    from jaxreason.search.trees import write_trees
    from jaxreason.train import get_trainer
    from jaxreason.train.errors import ConfigError

    trees = []
    for i in range(10):
        tree = countdown_tree()
        tree["id"] = i
        trees.append(tree)
    write_trees(str(tmp_path / "trees.jsonl"), trees)
    c = base.get_config()
    c.search.task = "countdown"
    c.prm_labels.trees = str(tmp_path / "trees.jsonl")
    c.prm_labels.held_out_share = 0.3
    summary = get_trainer("prm_labels")(c, str(tmp_path / "stage"))
    lines = lambda name: [json.loads(x) for x in open(summary["outputs"][name])]  # noqa: E731
    train, held = lines("steps"), lines("steps_held_out")
    assert len(train) + len(held) == 10 * 7
    assert summary["train"]["records"] == len(train) and len(held) > 0
    assert "16" in train[0]["prompt"]  # the task's prompt of the tree's record
    c.prm_labels.labels = "sharp"
    with pytest.raises(ConfigError, match="prm_labels.labels"):
        get_trainer("prm_labels")(c, str(tmp_path / "other"))
