"""Hand-built search trees for the ASTRO tests."""

from __future__ import annotations


def node(i, parent, text, depth, value=0.0, visits=1, terminal=False, answer=None,
         correct=None, reward=None):
    return {"id": i, "parent": parent, "text": text, "depth": depth, "visits": visits,
            "value": value, "rollout_reward": reward if reward is not None else value,
            "terminal": terminal, "answer": answer, "correct": correct}


def countdown_tree():
    """nums [3, 5, 2], target 16. Correct: 6 and 12; wrong answers: 3+5+2 (7), (3+5)-2 (8),
    (5-3)*2 (9 and 10: the same answer), 3*5 (11, a child of the root)."""
    ans = lambda a, ok, i, p, d: node(i, p, f"<answer> {a} </answer>\n", d,  # noqa: E731
                                      value=1.0 if ok else -1.0, terminal=True, answer=a,
                                      correct=ok)
    nodes = [
        node(0, None, "", 0, value=0.1, visits=9, reward=None),
        node(1, 0, "3 + 5 = 8\n", 1, value=0.5, visits=5),
        node(2, 0, "5 - 3 = 2\n", 1, value=-0.6, visits=3),
        node(3, 1, "8 * 2 = 16\n", 2, value=0.9, visits=3),
        node(4, 1, "8 - 2 = 6\n", 2, value=-0.8, visits=1),
        node(5, 2, "2 * 2 = 4\n", 2, value=-1.0, visits=2),
        ans("(3 + 5) * 2", True, 6, 3, 3),
        ans("3 + 5 + 2", False, 7, 3, 3),
        ans("(3 + 5) - 2", False, 8, 4, 3),
        ans("(5 - 3) * 2", False, 9, 5, 3),
        ans("(5 - 3) * 2", False, 10, 5, 3),
        ans("3 * 5", False, 11, 0, 1),
        ans("2 * (3 + 5)", True, 12, 3, 3),
    ]
    return {"id": 7, "record": {"nums": [3, 5, 2], "target": 16}, "nodes": nodes}
