"""Search-tree files: one JSON object per line, one tree per object.

    {"id": ..., "record": {...the task record...},
     "nodes": [{"id": 0, "parent": null, "text": "", "depth": 0, "visits": 12, "value": 0.3,
                "rollout_reward": 0.1, "terminal": false, "answer": null, "correct": null},
               {"id": 1, "parent": 0, "text": "44 + 19 = 63\n", "depth": 1, ...}, ...]}

Node fields: `id` (unique in the tree), `parent` (null only for the root, whose text is
empty), `text` (the step, with its delimiter), `depth` (root 0, parent + 1), `visits` (N),
`value` (Q), `rollout_reward` (R: the mean reward of the rollouts from the node, or the
node's own reward when it is terminal), `terminal`, `answer` (the extracted final answer of a
terminal, or null), `correct` (bool for a terminal, else null). Extra fields (`prior`, the
policy prior among its siblings; `reward`) are kept and not required.

`read_trees(path)` validates every line and raises `TreeFileError` naming the file, the line
and the field (a missing field, an unknown parent, a cycle, a second root, a wrong depth).
`write_trees(path, trees)` writes atomically (`path.tmp` renamed into place);
`append_tree(path, tree)` adds one line (a search writes each finished batch of trees so).
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable, Iterator

TREE_FIELDS = ("id", "record", "nodes")
NODE_FIELDS = ("id", "parent", "text", "depth", "visits", "value", "rollout_reward",
               "terminal", "answer", "correct")


class TreeFileError(ValueError):
    """A malformed tree line: the message starts with `file:line:` and names the field."""


def _fail(path: str, line: int, field: str, why: str) -> TreeFileError:
    return TreeFileError(f"{path}:{line}: field {field!r}: {why}")


def validate_tree(tree: Any, path: str = "<tree>", line: int = 0) -> dict[str, Any]:
    """`tree` itself when it is a valid tree; else `TreeFileError`."""
    if not isinstance(tree, dict):
        raise _fail(path, line, "<line>", f"expected a JSON object, got {type(tree).__name__}")
    for field in TREE_FIELDS:
        if field not in tree:
            raise _fail(path, line, field, "missing")
    nodes = tree["nodes"]
    if not isinstance(nodes, list) or not nodes:
        raise _fail(path, line, "nodes", "must be a non-empty list")
    by_id: dict[Any, dict[str, Any]] = {}
    root = None
    for i, node in enumerate(nodes):
        where = f"nodes[{i}]"
        if not isinstance(node, dict):
            raise _fail(path, line, where, "expected an object")
        for field in NODE_FIELDS:
            if field not in node:
                raise _fail(path, line, f"{where}.{field}", "missing")
        if not isinstance(node["text"], str):
            raise _fail(path, line, f"{where}.text", "must be a string")
        for field in ("depth", "visits"):
            if not isinstance(node[field], int) or isinstance(node[field], bool):
                raise _fail(path, line, f"{where}.{field}", f"must be an integer, got "
                            f"{node[field]!r}")
        for field in ("value", "rollout_reward"):
            if node[field] is not None and not isinstance(node[field], (int, float)):
                raise _fail(path, line, f"{where}.{field}", f"must be a number, got "
                            f"{node[field]!r}")
        if not isinstance(node["terminal"], bool):
            raise _fail(path, line, f"{where}.terminal", "must be true or false")
        if node["correct"] is not None and not isinstance(node["correct"], bool):
            raise _fail(path, line, f"{where}.correct", "must be true, false or null")
        if node["id"] in by_id:
            raise _fail(path, line, f"{where}.id", f"duplicate node id {node['id']!r}")
        by_id[node["id"]] = node
        if node["parent"] is None:
            if root is not None:
                raise _fail(path, line, f"{where}.parent", f"a second root (node "
                            f"{root['id']!r} is already the root)")
            if node["text"] != "":
                raise _fail(path, line, f"{where}.text", "the root's text must be empty")
            if node["depth"] != 0:
                raise _fail(path, line, f"{where}.depth", "the root's depth must be 0")
            root = node
    if root is None:
        raise _fail(path, line, "nodes", "no root (a node with parent null)")
    for i, node in enumerate(nodes):
        parent = node["parent"]
        if parent is None:
            continue
        if parent not in by_id:
            raise _fail(path, line, f"nodes[{i}].parent", f"unknown parent {parent!r}")
    # every node must reach the root: a walk longer than the node count is a cycle
    reaches_root = {root["id"]}
    for i, node in enumerate(nodes):
        chain, current = [], node
        while current["id"] not in reaches_root:
            chain.append(current["id"])
            if len(chain) > len(nodes):
                raise _fail(path, line, f"nodes[{i}].parent", f"cycle through node "
                            f"{node['id']!r}")
            current = by_id[current["parent"]]
        reaches_root.update(chain)
    for i, node in enumerate(nodes):
        if node["parent"] is not None and node["depth"] != by_id[node["parent"]]["depth"] + 1:
            raise _fail(path, line, f"nodes[{i}].depth", f"{node['depth']} is not its parent's "
                        f"depth + 1")
    return tree


def iter_trees(path: str) -> Iterator[dict[str, Any]]:
    """Validated trees of a tree file, one per non-blank line."""
    with open(path) as f:
        for number, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                tree = json.loads(text)
            except json.JSONDecodeError as e:
                raise _fail(path, number, "<line>", f"not JSON ({e.msg} at column {e.colno})"
                            ) from None
            yield validate_tree(tree, path, number)


def read_trees(path: str) -> list[dict[str, Any]]:
    """All trees of a tree file (validated; see the module docstring)."""
    return list(iter_trees(path))


def _line(tree: dict[str, Any]) -> str:
    return json.dumps(tree, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v))


def write_trees(path: str, trees: Iterable[dict[str, Any]]) -> int:
    """Write validated trees to `path` atomically; returns the number written."""
    tmp = f"{path}.tmp"
    count = 0
    with open(tmp, "w") as f:
        for tree in trees:
            validate_tree(tree, path, count + 1)
            f.write(_line(tree) + "\n")
            count += 1
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return count


def append_tree(path: str, tree: dict[str, Any]) -> None:
    """Append one validated tree line (flushed and synced)."""
    validate_tree(tree, path, 0)
    with open(path, "a") as f:
        f.write(_line(tree) + "\n")
        f.flush()
        os.fsync(f.fileno())


# ----------------------------------------------------------------------------- helpers

def node_map(tree: dict[str, Any]) -> dict[Any, dict[str, Any]]:
    return {node["id"]: node for node in tree["nodes"]}


def root_id(tree: dict[str, Any]) -> Any:
    return next(node["id"] for node in tree["nodes"] if node["parent"] is None)


def children_map(tree: dict[str, Any]) -> dict[Any, list[Any]]:
    """Children ids per node id, in file order."""
    out: dict[Any, list[Any]] = {node["id"]: [] for node in tree["nodes"]}
    for node in tree["nodes"]:
        if node["parent"] is not None:
            out[node["parent"]].append(node["id"])
    return out


def path_to(tree: dict[str, Any], node_id: Any, *, nodes: dict | None = None) -> list[Any]:
    """Node ids from the root's first child down to `node_id` (root excluded)."""
    nodes = nodes or node_map(tree)
    out = []
    current = nodes[node_id]
    while current["parent"] is not None:
        out.append(current["id"])
        current = nodes[current["parent"]]
    return out[::-1]


def is_valid(tree: dict[str, Any]) -> bool:
    """A tree is valid for procedure cloning when it has a correct terminal."""
    return any(node["terminal"] and node["correct"] for node in tree["nodes"])
