"""Draw a search tree, or a chain of thought parsed back into steps, as HTML (inline SVG) or DOT.

    python launch/show_tree.py <workdir>/search/trees.jsonl --index 3 --out tree.html
    python launch/show_tree.py <workdir>/clone/astro.jsonl --index 0 --out trace.html
    python launch/show_tree.py <run>/eval/step_20/items.jsonl --index 5 --out answer.dot

A line with "nodes" is a tree (nodes coloured by Q, terminals bordered green / red); any other
line is a record whose text (`--field`, default: `completion`, or an evaluation item's greedy
completion) is parsed into steps: boundaries at the step separator and the fixed reflection
phrases, backtrack edges to the step the "Let's go back to where we ..." sentence names.
`--out` ending in `.dot` writes Graphviz source, anything else a self-contained HTML page.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jaxreason.search.render import parse_trace, to_dot, to_html, trace_graph, tree_graph  # noqa: E402
from jaxreason.search.trees import validate_tree  # noqa: E402


def _line(path: str, index: int) -> tuple[dict, int]:
    with open(path) as f:
        lines = [(n, line) for n, line in enumerate(f, 1) if line.strip()]
    if not 0 <= index < len(lines):
        raise SystemExit(f"error: {path} has {len(lines)} lines; --index {index} is out of range")
    number, text = lines[index]
    try:
        return json.loads(text), number
    except json.JSONDecodeError as e:
        raise SystemExit(f"error: {path}:{number}: not JSON ({e.msg})") from None


def _text_of(obj: dict, field: str | None) -> str:
    if field:
        value = obj
        for part in field.split("."):
            value = value[part]
        return str(value)
    if "completion" in obj:
        return str(obj["completion"])
    if isinstance(obj.get("greedy"), dict):
        return str(obj["greedy"]["completion"])
    raise SystemExit("error: the line has no 'completion'; name the text with --field")


def _domain(obj: dict, forced: str | None) -> str:
    if forced:
        return forced
    record = obj.get("record") or obj.get("item") or obj
    return "countdown" if isinstance(record, dict) and "nums" in record else "math"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file")
    parser.add_argument("--index", type=int, default=0, help="0-based line (non-blank lines)")
    parser.add_argument("--out", required=True, help="output .html or .dot")
    parser.add_argument("--field", default=None, help="dotted field of the text to parse")
    parser.add_argument("--domain", choices=("countdown", "math"), default=None,
                        help="step separator: a line (countdown) or a blank line (math)")
    args = parser.parse_args(argv)
    obj, number = _line(args.file, args.index)
    nodes = obj.get("nodes") if isinstance(obj, dict) else None
    if isinstance(nodes, list) and nodes and isinstance(nodes[0], dict):  # a tree line
        validate_tree(obj, args.file, number)
        graph = tree_graph(obj)
        title = f"tree {obj['id']} ({os.path.basename(args.file)}:{number})"
        extra = json.dumps(obj["record"])
    else:
        text = _text_of(obj, args.field)
        parsed = parse_trace(text, _domain(obj, args.domain))
        graph = trace_graph(parsed)
        title = (f"chain of thought, {len(parsed.steps)} steps, {parsed.num_backtracks} "
                 f"backtracks ({os.path.basename(args.file)}:{number})")
        extra = text
    out = to_dot(graph, title) if args.out.endswith(".dot") else to_html(graph, title, extra)
    with open(args.out, "w") as f:
        f.write(out)
    print(f"wrote {args.out} ({len(graph.nodes)} nodes, {len(graph.edges)} edges)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
