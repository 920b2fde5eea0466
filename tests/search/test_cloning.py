"""Algorithm 1 invariants, rendering with the fixed phrases, and parsing a trace back."""

import itertools

import pytest

from jaxreason import behaviors, tasks
from jaxreason.search import (LinearizeError, backtracks, curate, direct_trace, linearize,
                              parse_trace, render_trace, terminals)
from jaxreason.search.cloning import CurationSettings, max_incorrect
from jaxreason.search.render import sequence_matches_tree
from jaxreason.search.trees import node_map, path_to
from hand_trees import countdown_tree

TASK = tasks.get("countdown", reward="astro")


@pytest.mark.parametrize("k,seed", list(itertools.product([0, 1, 2, 3, 4], range(12))))
def test_algorithm_1_invariants(k, seed):
    tree = countdown_tree()
    nodes = node_map(tree)
    correct, wrong = terminals(tree)
    ids = linearize(tree, k, seed)
    # ends at a correct terminal
    assert ids[-1] in correct and nodes[ids[-1]]["correct"]
    # no node twice; every node's parent is the root or earlier in the sequence
    assert len(ids) == len(set(ids))
    for position, i in enumerate(ids):
        assert nodes[i]["parent"] == 0 or nodes[i]["parent"] in ids[:position]
    # the wrong terminals have pairwise distinct answers, and there are k of them
    visited_wrong = [i for i in ids if i in wrong]
    assert len(visited_wrong) == k
    assert len({nodes[i]["answer"] for i in visited_wrong}) == k
    # one backtrack per incorrect branch, each to the parent of the first new node
    jumps = backtracks(tree, ids)
    assert len(jumps) == k
    for position, target in jumps:
        assert target == nodes[ids[position]]["parent"]
        assert nodes[ids[position - 1]]["terminal"]  # a branch is left at its terminal
    # each branch's path is in the sequence (merged, only new nodes appended)
    for terminal in visited_wrong + [ids[-1]]:
        assert set(path_to(tree, terminal)) <= set(ids)


def test_linearize_is_seeded_and_varies():
    tree = countdown_tree()
    assert linearize(tree, 2, 3) == linearize(tree, 2, 3)
    assert len({tuple(linearize(tree, 2, s)) for s in range(20)}) > 3


def test_linearize_errors_are_clear():
    tree = countdown_tree()
    with pytest.raises(LinearizeError, match="4 distinct wrong answers, 5 requested"):
        linearize(tree, 5, 0)
    for n in tree["nodes"]:
        n["correct"] = False if n["terminal"] else None
    with pytest.raises(LinearizeError, match="no correct terminal"):
        linearize(tree, 0, 0)


def test_judge_filters_correct_terminals():
    tree = countdown_tree()
    for seed in range(10):
        assert linearize(tree, 1, seed, judge=lambda t, i: i == 12)[-1] == 12


def test_render_uses_the_fixed_phrases_and_backtrack_targets():
    tree = countdown_tree()
    ids = [1, 4, 8, 3, 6]  # wrong branch 8 under 4, back to 1, then 3 -> 6
    assert linearize  # sequence built by hand, checked by backtracks()
    assert backtracks(tree, ids) == [(3, 1)]
    text = render_trace(tree, ids, TASK)
    assert text.startswith("3 + 5 = 8\n8 - 2 = 6\n<answer> (3 + 5) - 2 </answer>\n")
    assert (f"{behaviors.ASTRO_REFLECTION} {behaviors.ASTRO_NEGATIVE_VERDICT} "
            "Let's go back to where we computed 3 + 5 = 8.\n8 * 2 = 16") in text
    assert text.endswith(f"{behaviors.ASTRO_REFLECTION} {behaviors.ASTRO_POSITIVE_VERDICT}\n"
                         "<answer> (3 + 5) * 2 </answer>")
    assert TASK.grade(tree["record"], text).correct  # the last <answer> is the correct one
    restart = render_trace(tree, [11, 1, 3, 6], TASK)
    assert behaviors.ASTRO_RESTART in restart
    counts = behaviors.count(text, "countdown")
    assert counts["backtracking"] >= 1  # the behaviors counter sees the backtrack


def test_positive_reflection_after_high_q_steps_not_before_a_backtrack():
    tree = countdown_tree()
    text = render_trace(tree, [1, 4, 8, 3, 6], TASK, positive_q=0.4)
    # node 1 (Q .5) is followed by 4 (no jump): positive; node 3 (Q .9) too; 4 (Q -.8) not
    assert text.count(behaviors.ASTRO_POSITIVE_VERDICT) == 3
    assert text.index("3 + 5 = 8") < text.index(behaviors.ASTRO_POSITIVE_VERDICT)


def test_direct_trace_is_the_path_only():
    tree = countdown_tree()
    assert direct_trace(tree, 6, TASK) == "3 + 5 = 8\n8 * 2 = 16\n<answer> (3 + 5) * 2 </answer>"
    assert TASK.grade(tree["record"], direct_trace(tree, 12, TASK)).correct


@pytest.mark.parametrize("k,seed", list(itertools.product([0, 1, 2, 3, 4], range(8))))
def test_a_rendered_trace_parses_back_to_the_same_nodes(k, seed):
    tree = countdown_tree()
    ids = linearize(tree, k, seed)
    text = render_trace(tree, ids, TASK, positive_q=0.4 if seed % 2 else None)
    parsed = parse_trace(text, TASK)
    assert sequence_matches_tree(tree, ids, parsed), (ids, text, parsed)
    assert parsed.num_backtracks == k


def test_parse_math_trace_with_blank_lines_and_fuzzy_target():
    text = ("Let x be the number.\n\nThen 2x = 10, so x = 4.\n\n"
            f"{behaviors.ASTRO_REFLECTION} {behaviors.ASTRO_NEGATIVE_VERDICT} Let's go back to "
            "where we wrote \"Let x be the number\".\n\nThen 2x = 10, so x = 5.\n\n"
            f"{behaviors.ASTRO_REFLECTION} {behaviors.ASTRO_POSITIVE_VERDICT}\n\n"
            "The final answer is $\\boxed{5}$.")
    parsed = parse_trace(text, "math")
    assert [s.parent for s in parsed.steps] == [0, 1, 1, 3]
    assert parsed.steps[1].verdict == "negative" and parsed.steps[2].verdict == "positive"
    assert parsed.steps[3].restatement and parsed.sequence == [1, 2, 3]
    assert (2, 1, "backtrack") in parsed.edges


def test_curate_gives_both_arms_the_same_examples():
    tree = countdown_tree()
    other = countdown_tree()
    other["id"] = 8
    for n in other["nodes"]:
        n["correct"] = False if n["terminal"] else None  # invalid: skipped
    astro, direct, counts = curate([tree, other], TASK, CurationSettings(seed=1))
    assert counts["records_per_arm"] == len(astro) == len(direct) == 4
    assert counts["skipped_no_correct"] == 1
    assert astro[0]["k"] == 0  # the direct-style trace of the ASTRO arm
    for a, d in zip(astro, direct):
        assert a["nodes"][-1] == d["nodes"][-1]  # the same correct terminal
        assert a["n_backtracks"] == a["k"] <= max_incorrect(tree)
        assert TASK.grade(a["record"], a["completion"]).correct
        assert TASK.grade(d["record"], d["completion"]).correct
        assert behaviors.ASTRO_REFLECTION not in d["completion"]
        assert a["prompt"] == TASK.prompt(tree["record"])


def test_tag_line_targets_read_as_started_and_parse_back():
    tree = countdown_tree()
    for n in tree["nodes"]:  # put a "<think>" line between the root and its children
        if n["parent"] is not None:
            n["depth"] += 1
            n["parent"] = 100 if n["parent"] == 0 else n["parent"]
    tree["nodes"].insert(1, {"id": 100, "parent": 0, "text": "<think>\n", "depth": 1,
                             "visits": 9, "value": 0.1, "rollout_reward": 0.1,
                             "terminal": False, "answer": None, "correct": None})
    ids = [100, 11, 1, 3, 6]  # wrong answer right after <think>: back to <think>
    text = render_trace(tree, ids, TASK)
    assert "Let's go back to where we started." in text
    assert sequence_matches_tree(tree, ids, parse_trace(text, TASK))


def test_a_closing_tag_target_is_described_by_its_last_computed_step():
    tree = countdown_tree()
    # node 3 ("8 * 2 = 16") -> a "</think>" line (200) -> the answers 6, 7 and 12
    tree["nodes"].append({"id": 200, "parent": 3, "text": "</think>\n", "depth": 3,
                          "visits": 3, "value": 0.5, "rollout_reward": 0.5, "terminal": False,
                          "answer": None, "correct": None})
    for n in tree["nodes"]:
        if n["id"] in (6, 7, 12):
            n["parent"], n["depth"] = 200, 4
    text = render_trace(tree, [1, 3, 200, 7, 6], TASK)
    assert "Let's go back to where we computed 8 * 2 = 16." in text
    assert len(backtracks(tree, [1, 3, 200, 7, 6])) == 1
