"""Tree graphs: a search tree, or a generated chain of thought parsed back into steps, drawn as
Graphviz DOT or as a self-contained HTML page with inline SVG (no Graphviz needed).

- `parse_trace(text, task)`: steps of a chain of thought. A step boundary is the step
  separator (a line for Countdown, a blank line for math) and every fixed reflection,
  verdict, backtrack or restart sentence (`jaxreason.behaviors` phrases). Consecutive steps
  are joined by "continue" edges; "Let's go back to where we <description>." adds a
  "backtrack" edge from the current step to the earlier step whose text best matches the
  description (difflib ratio; the latest step wins a tie) and the next step continues from
  there; the restart sentence goes back to the root. Reflection verdicts mark the step they
  follow. A last step that restates the answer after the final positive verdict is marked
  `restatement` and is not part of `sequence`.
- `tree_graph(tree)` / `trace_graph(parsed)`: the drawable graph; `to_dot(graph)`,
  `to_html(graph, title)`: the two renderings. Nodes are coloured by value (Q from -1 red to
  +1 green; grey without a value), correct terminals get a green border and incorrect ones a
  red border; backtrack edges are dashed.
"""

from __future__ import annotations

import dataclasses
import difflib
import html
import re
from typing import Any, Sequence

from jaxreason.search.cloning import Phrases, step_separator
from jaxreason.search.trees import children_map, node_map, root_id


@dataclasses.dataclass
class ParsedStep:
    id: int  # 1-based; 0 is the root (the problem)
    text: str
    parent: int
    verdict: str | None = None  # "positive" / "negative" after a reflection
    restatement: bool = False


@dataclasses.dataclass
class ParsedTrace:
    steps: list[ParsedStep]
    edges: list[tuple[int, int, str]]  # (from, to, "continue" | "backtrack")

    @property
    def sequence(self) -> list[int]:
        """Step ids in order, without a final answer restatement."""
        return [s.id for s in self.steps if not s.restatement]

    @property
    def num_backtracks(self) -> int:
        return sum(1 for e in self.edges if e[2] == "backtrack")


def _phrase_regex(phrases: Phrases) -> re.Pattern[str]:
    head, _, tail = phrases.backtrack.partition("{step}")
    parts = [
        ("reflection", re.escape(phrases.reflection)),
        ("negative", re.escape(phrases.negative)),
        ("positive", re.escape(phrases.positive)),
        ("restart", re.escape(phrases.restart)),
        ("backtrack", re.escape(head) + r"(?P<desc>[^\n]*?)" + re.escape(tail)
         + r"(?=\s|$)"),
    ]
    return re.compile("|".join(f"(?P<{name}>{rx})" for name, rx in parts))


def _norm(text: str) -> str:
    text = " ".join(text.split()).strip().strip('"').rstrip(".").strip()
    text = re.sub(r'^(?:computed|wrote|had|found|got|did)\s+"?', "", text)
    return text.rstrip('"').replace(" ...", "").strip().lower()


def resolve_target(description: str, candidates: Sequence[ParsedStep]) -> int:
    """The id of the candidate step whose text best matches the description (0: none)."""
    want = _norm(description)
    if want == "started":  # Countdown's description of a tag line such as "<think>"
        tags = [s for s in candidates if not re.search(r"\d", s.text)]
        return tags[0].id if tags else 0
    best, best_score = 0, -1.0
    for step in candidates:
        have = _norm(step.text)
        if want and have.startswith(want):
            score = 1.0 + len(want) / max(len(have), 1)
        else:
            score = difflib.SequenceMatcher(None, want, have).ratio()
        if score >= best_score:
            best, best_score = step.id, score
    return best


def parse_trace(text: str, task: Any = "math", *, phrases: Phrases = Phrases(),
                separator: str | None = None) -> ParsedTrace:
    """See the module docstring."""
    sep = step_separator(task) if separator is None else separator
    regex = _phrase_regex(phrases)
    items: list[tuple[str, str]] = []
    position = 0
    for match in regex.finditer(text):
        items.extend(("step", s) for s in _split(text[position:match.start()], sep))
        kind = next(name for name in ("reflection", "negative", "positive", "restart",
                                      "backtrack") if match.group(name) is not None)
        items.append((kind, (match.group("desc") or "") if kind == "backtrack" else ""))
        position = match.end()
    items.extend(("step", s) for s in _split(text[position:], sep))

    steps: list[ParsedStep] = []
    edges: list[tuple[int, int, str]] = []
    current = 0
    for kind, value in items:
        if kind == "step":
            step = ParsedStep(len(steps) + 1, value, current)
            steps.append(step)
            edges.append((current, step.id, "continue"))
            current = step.id
        elif kind in ("negative", "positive"):
            if current:
                steps[current - 1].verdict = kind
        elif kind == "backtrack":
            target = resolve_target(value, [s for s in steps if s.id != current])
            edges.append((current, target, "backtrack"))
            current = target
        elif kind == "restart":
            edges.append((current, 0, "backtrack"))
            current = 0
    if len(steps) >= 2 and len(items) >= 2 and items[-1][0] == "step" and \
            items[-2][0] == "positive":
        steps[-1].restatement = True  # the answer restated after the final positive verdict
    return ParsedTrace(steps, edges)


def _split(chunk: str, sep: str) -> list[str]:
    return [part.strip() for part in chunk.split(sep) if part.strip()]


# ----------------------------------------------------------------------------- graphs

@dataclasses.dataclass
class Graph:
    """nodes: {id, parent, label (full text), value (or None), kind ("root", "step",
    "correct", "incorrect"), info}; edges: (from, to, "continue" | "backtrack")."""

    nodes: list[dict[str, Any]]
    edges: list[tuple[Any, Any, str]]


def tree_graph(tree: dict[str, Any]) -> Graph:
    nodes = []
    for n in tree["nodes"]:
        kind = ("root" if n["parent"] is None else
                ("correct" if n["correct"] else "incorrect") if n["terminal"] else "step")
        info = f"N={n['visits']} Q={n['value']:.2f}"
        if n["rollout_reward"] is not None:
            info += f" R={n['rollout_reward']:.2f}"
        if n["terminal"]:
            info += f" answer={n['answer']!r}"
        nodes.append({"id": n["id"], "parent": n["parent"], "label": n["text"].strip() or
                      "(problem)", "value": n["value"], "kind": kind, "info": info})
    edges = [(n["parent"], n["id"], "continue") for n in tree["nodes"] if n["parent"] is not None]
    return Graph(nodes, edges)


def trace_graph(parsed: ParsedTrace) -> Graph:
    nodes = [{"id": 0, "parent": None, "label": "(problem)", "value": None, "kind": "root",
              "info": ""}]
    for s in parsed.steps:
        kind = {"positive": "correct", "negative": "incorrect"}.get(s.verdict or "", "step")
        nodes.append({"id": s.id, "parent": s.parent, "label": s.text, "value": None,
                      "kind": kind, "info": f"step {s.id}" + (f", verdict {s.verdict}"
                                                              if s.verdict else "")
                      + (", answer restated" if s.restatement else "")})
    return Graph(nodes, list(parsed.edges))


def _color(value: float | None) -> str:
    if value is None:
        return "#e0e0e0"
    x = max(-1.0, min(1.0, float(value)))
    # -1 red (215,48,39) -> 0 yellow (255,255,191) -> +1 green (26,152,80)
    lo, mid, hi = (215, 48, 39), (255, 255, 191), (26, 152, 80)
    a, b, t = (lo, mid, x + 1) if x < 0 else (mid, hi, x)
    return "#%02x%02x%02x" % tuple(int(round(a[i] + (b[i] - a[i]) * t)) for i in range(3))


_BORDER = {"correct": "#1a9850", "incorrect": "#d73027", "root": "#333333", "step": "#777777"}


def _short(text: str, width: int = 28) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def to_dot(graph: Graph, title: str = "tree") -> str:
    """Graphviz DOT source (`dot -Tsvg`)."""
    def q(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    lines = [f"digraph {q(title)} {{", "  node [shape=box, style=\"rounded,filled\", "
             "fontname=\"Helvetica\", fontsize=10];"]
    for n in graph.nodes:
        label = _short(n["label"], 40) + (f"\n{n['info']}" if n["info"] else "")
        width = 3 if n["kind"] in ("correct", "incorrect") else 1
        lines.append(f"  n{n['id']} [label={q(label)}, fillcolor={q(_color(n['value']))}, "
                     f"color={q(_BORDER[n['kind']])}, penwidth={width}];")
    for a, b, kind in graph.edges:
        style = ("[style=dashed, color=\"#d73027\", constraint=false]" if kind == "backtrack"
                 else "")
        lines.append(f"  n{a} -> n{b} {style};".replace("  ;", ";").replace(" ;", ";"))
    lines.append("}")
    return "\n".join(lines) + "\n"


def layout(graph: Graph) -> dict[Any, tuple[float, float]]:
    """(x, y) per node: depth down, leaves left to right in depth-first order, a parent
    centred over its children."""
    kids: dict[Any, list[Any]] = {n["id"]: [] for n in graph.nodes}
    roots = []
    for n in graph.nodes:
        if n["parent"] is None or n["parent"] not in kids:
            roots.append(n["id"])
        else:
            kids[n["parent"]].append(n["id"])
    pos: dict[Any, tuple[float, float]] = {}
    next_x = [0.0]

    def place(i: Any, depth: int) -> float:
        stack = [(i, depth, False)]
        xs: dict[Any, float] = {}
        while stack:
            node, d, done = stack.pop()
            if not done:
                stack.append((node, d, True))
                for c in reversed(kids[node]):
                    stack.append((c, d + 1, False))
            else:
                if kids[node]:
                    x = sum(xs[c] for c in kids[node]) / len(kids[node])
                else:
                    x = next_x[0]
                    next_x[0] += 1
                xs[node] = x
                pos[node] = (x, float(d))
        return xs[i]

    for r in roots:
        place(r, 0)
    return pos


def to_svg(graph: Graph, *, box_w: int = 170, box_h: int = 46, gap_x: int = 20,
           gap_y: int = 40) -> str:
    pos = layout(graph)
    if not pos:
        return "<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'></svg>"
    max_x = max(x for x, _ in pos.values())
    max_y = max(y for _, y in pos.values())
    width = int((max_x + 1) * (box_w + gap_x) + gap_x)
    height = int((max_y + 1) * (box_h + gap_y) + gap_y)

    def centre(i: Any) -> tuple[float, float]:
        x, y = pos[i]
        return gap_x + x * (box_w + gap_x) + box_w / 2, gap_y / 2 + y * (box_h + gap_y) + box_h / 2

    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
           f"font-family='Helvetica,Arial,sans-serif' font-size='11'>",
           "<defs><marker id='arrow' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='6' "
           "markerHeight='6' orient='auto'><path d='M0,0 L10,5 L0,10 z' fill='#555'/></marker>"
           "<marker id='back' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='6' "
           "markerHeight='6' orient='auto'><path d='M0,0 L10,5 L0,10 z' fill='#d73027'/>"
           "</marker></defs>"]
    for a, b, kind in graph.edges:
        if a not in pos or b not in pos:
            continue
        (x1, y1), (x2, y2) = centre(a), centre(b)
        if kind == "backtrack":
            bend = max(40.0, abs(y1 - y2) * 0.5)
            out.append(f"<path d='M{x1 + box_w / 2:.0f},{y1:.0f} C{x1 + box_w / 2 + bend:.0f},"
                       f"{y1:.0f} {x2 + box_w / 2 + bend:.0f},{y2:.0f} {x2 + box_w / 2:.0f},"
                       f"{y2:.0f}' fill='none' stroke='#d73027' stroke-dasharray='5,3' "
                       f"marker-end='url(#back)'><title>backtrack</title></path>")
        else:
            out.append(f"<line x1='{x1:.0f}' y1='{y1 + box_h / 2:.0f}' x2='{x2:.0f}' "
                       f"y2='{y2 - box_h / 2:.0f}' stroke='#555' marker-end='url(#arrow)'/>")
    for n in graph.nodes:
        cx, cy = centre(n["id"])
        x, y = cx - box_w / 2, cy - box_h / 2
        stroke = _BORDER[n["kind"]]
        sw = 3 if n["kind"] in ("correct", "incorrect") else 1
        tip = html.escape(n["label"] + ("\n" + n["info"] if n["info"] else ""), quote=True)
        out.append(f"<g><title>{tip}</title><rect x='{x:.0f}' y='{y:.0f}' width='{box_w}' "
                   f"height='{box_h}' rx='6' fill='{_color(n['value'])}' stroke='{stroke}' "
                   f"stroke-width='{sw}'/>"
                   f"<text x='{cx:.0f}' y='{cy - 4:.0f}' text-anchor='middle'>"
                   f"{html.escape(_short(n['label']))}</text>"
                   f"<text x='{cx:.0f}' y='{cy + 11:.0f}' text-anchor='middle' fill='#333' "
                   f"font-size='9'>{html.escape(_short(n['info'], 34))}</text></g>")
    out.append("</svg>")
    return "\n".join(out)


def to_html(graph: Graph, title: str = "search tree", extra: str = "") -> str:
    """A self-contained page: the SVG, a legend and (optional) `extra` preformatted text."""
    legend = ("fill: value Q (red -1, yellow 0, green +1; grey: none) · border: green correct "
              "terminal / positive verdict, red incorrect terminal / negative verdict · solid: "
              "continue · dashed red: backtrack · hover a node for its full text")
    body = f"<pre>{html.escape(extra)}</pre>" if extra else ""
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>body{{font-family:Helvetica,Arial,sans-serif;margin:16px}}"
            f"pre{{background:#f6f6f6;padding:8px;white-space:pre-wrap}}</style></head><body>"
            f"<h3>{html.escape(title)}</h3><p style='font-size:12px'>{legend}</p>"
            f"<div style='overflow:auto'>{to_svg(graph)}</div>{body}</body></html>\n")


def sequence_matches_tree(tree: dict[str, Any], node_ids: Sequence[Any],
                          parsed: ParsedTrace) -> bool:
    """Whether a parsed trace has the node sequence and the parents of `node_ids` (texts
    compared without surrounding whitespace)."""
    nodes = node_map(tree)
    root = root_id(tree)
    seq = parsed.sequence
    if len(seq) != len(node_ids):
        return False
    step_of = {pid: nid for pid, nid in zip(seq, node_ids)}
    step_of[0] = root
    for pid, nid in zip(seq, node_ids):
        step = parsed.steps[pid - 1]
        if step.text != nodes[nid]["text"].strip():
            return False
        if step_of.get(step.parent) != nodes[nid]["parent"]:
            return False
    return True


__all__ = ["Graph", "ParsedStep", "ParsedTrace", "children_map", "layout", "parse_trace",
           "resolve_target", "sequence_matches_tree", "to_dot", "to_html", "to_svg",
           "trace_graph", "tree_graph"]
