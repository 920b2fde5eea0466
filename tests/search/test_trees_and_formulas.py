"""Tree files (round trip, validation errors naming file/line/field), PUCT, priors, backup,
tree statistics, DOT / HTML rendering."""

import json
import math

import numpy as np
import pytest

from jaxreason.search import (Tree, TreeFileError, backup, puct_scores, read_trees, select,
                              step_priors, to_dot, to_html, tree_graph, tree_stats, write_trees)
from jaxreason.search.render import parse_trace, trace_graph
from hand_trees import countdown_tree


def test_round_trip(tmp_path):
    path = tmp_path / "trees.jsonl"
    trees = [countdown_tree(), countdown_tree()]
    trees[1]["id"] = 9
    assert write_trees(str(path), trees) == 2
    assert read_trees(str(path)) == trees


def _write_lines(path, trees):
    path.write_text("".join(json.dumps(t) + "\n" for t in trees))


@pytest.mark.parametrize("mutate,field,why", [
    (lambda t: t["nodes"][3].pop("visits"), "nodes[3].visits", "missing"),
    (lambda t: t.pop("record"), "record", "missing"),
    (lambda t: t["nodes"][4].update(parent=99), "nodes[4].parent", "unknown parent 99"),
    (lambda t: (t["nodes"][1].update(parent=3), t["nodes"][3].update(parent=1)),
     "nodes[1].parent", "cycle"),
    (lambda t: t["nodes"][2].update(parent=None), "nodes[2].parent", "a second root"),
    (lambda t: t["nodes"][5].update(depth=7), "nodes[5].depth", "parent's depth"),
    (lambda t: t["nodes"][6].update(terminal="yes"), "nodes[6].terminal", "true or false"),
    (lambda t: t["nodes"][6].update(id=3), "nodes[6].id", "duplicate"),
])
def test_malformed_line_names_file_line_and_field(tmp_path, mutate, field, why):
    path = tmp_path / "bad.jsonl"
    bad = countdown_tree()
    mutate(bad)
    _write_lines(path, [countdown_tree(), bad])
    with pytest.raises(TreeFileError) as e:
        read_trees(str(path))
    message = str(e.value)
    assert message.startswith(f"{path}:2: field {field!r}"), message
    assert why in message


def test_not_json_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(countdown_tree()) + "\n\n{oops\n")
    with pytest.raises(TreeFileError, match=r"bad.jsonl:3: field '<line>': not JSON"):
        read_trees(str(path))


def _tree_with_children(values, visits, priors, parent_visits):
    tree = Tree(id=0, record={}, prompt=[1])
    tree.nodes[0].visits = parent_visits
    for v, n, p in zip(values, visits, priors):
        child = tree.add(0, text="s\n", prior=p)
        child.value, child.visits = v, n
    return tree


def test_puct_choice():
    # Q + c * P * sqrt(N_parent) / (1 + N_child), N_parent = 16, c = 1.5
    tree = _tree_with_children([0.5, 0.2, -0.3], [8, 2, 1], [0.2, 0.3, 0.5], 16)
    expected = [0.5 + 1.5 * 0.2 * 4 / 9, 0.2 + 1.5 * 0.3 * 4 / 3, -0.3 + 1.5 * 0.5 * 4 / 2]
    np.testing.assert_allclose(puct_scores(tree, 0, 1.5), expected)
    assert select(tree, 1.5) == 3  # -0.3 + 1.5 = 1.2 beats 0.8 and 0.76
    assert select(tree, 0.0) == 1  # pure exploitation: highest Q
    assert select(tree, 0.5) == 1  # 0.544 vs 0.4 vs 0.2
    # the prior decides between equal values and visits
    even = _tree_with_children([0.1, 0.1], [1, 1], [0.3, 0.7], 4)
    assert select(even, 1.0) == 2


def test_priors_are_a_softmax_of_mean_logprobs():
    p = step_priors([-1.0, -2.0, -1.0])
    e = np.exp([-1.0, -2.0, -1.0])
    np.testing.assert_allclose(p, e / e.sum())
    assert math.isclose(p.sum(), 1.0)


def test_backup_on_a_three_node_example():
    """root -> a -> b. Expanding the root adds a (R = 0.5); expanding a adds b (R = -1)."""
    tree = Tree(id=0, record={}, prompt=[1])
    a = tree.add(0, text="a\n")
    a.rollout_reward, a.visits, a.value = 0.5, 1, 0.5
    backup(tree, 0)
    assert (tree.nodes[0].visits, tree.nodes[0].value) == (1, 0.5)
    b = tree.add(a.id, text="b\n")
    b.rollout_reward, b.visits, b.value = -1.0, 1, -1.0
    backup(tree, a.id)
    # Q(a) = (Q(b) N(b) + R(a)) / (N(b) + 1) = (-1 + 0.5) / 2
    assert (a.visits, a.value) == (2, -0.25)
    # the root has no R: the visit-weighted mean of its children
    assert (tree.nodes[0].visits, tree.nodes[0].value) == (2, -0.25)
    # revisiting the terminal b: N(b) = 2, Q(b) = R(b); Q(a) = (-1 * 2 + 0.5) / 3
    b.terminal = True
    backup(tree, b.id)
    assert (b.visits, b.value) == (2, -1.0)
    assert a.visits == 3 and math.isclose(a.value, (-2 + 0.5) / 3)


def test_tree_stats_on_the_hand_tree():
    stats = tree_stats([countdown_tree()])
    assert stats["valid_tree_rate"] == 1.0 and stats["mean_nodes"] == 13
    # correct paths: 1 -> 3 -> {6, 12}; pairs: 1 vs {2, 11}, 3 vs {4}, 6 vs {7}, 12 vs {7}
    assert stats["q_pairs"] == 4
    assert stats["q_correct_path"] > stats["q_siblings"]


def test_dot_and_html(tmp_path):
    tree = countdown_tree()
    dot = to_dot(tree_graph(tree))
    assert dot.startswith("digraph") and dot.count("->") == 12
    page = to_html(tree_graph(tree), "tree 7")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "http" not in page.replace(
        "http://www.w3.org/2000/svg", "")
    assert page.count("<rect") == 13
    parsed = parse_trace("3 + 5 = 8\nBut wait, are we solving the problem correctly so far? "
                         "Hmm... I'm not sure if we're solving the problem correctly so far. "
                         "Let's restart our solution from the beginning.\n5 - 3 = 2", "countdown")
    graph = trace_graph(parsed)
    assert ("backtrack" in to_dot(graph)) is False and "dashed" in to_dot(graph)
    assert "stroke-dasharray" in to_html(graph)
