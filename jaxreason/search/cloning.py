"""Procedure cloning: search trees -> chains of thought that reflect and backtrack (ASTRO
stages 2 and 3).

- `linearize(tree, num_incorrect, seed)`: one correct terminal n* drawn uniformly (those a
  `judge` keeps, when one is given), `num_incorrect` incorrect terminals whose answers are
  pairwise distinct (a missing answer counts as one answer), and the root-to-node paths of the
  incorrect ones and then of n* merged in that order, each contributing only the nodes not
  already in the sequence. The sequence ends at n*; wherever a node does not continue the
  previous one the trace backtracks to that node's parent, so there is one backtrack per
  incorrect terminal.
- `render_trace(tree, node_ids, task)`: the text. Steps are written as the policy wrote them;
  at each backtrack the fixed reflection sentence, the negative verdict and "Let's go back to
  where we <what the target step did>." (or the restart sentence when the target is the
  root); after intermediate nodes with Q at least `positive_q` (not right before a backtrack)
  and after the final step, the reflection sentence and the positive verdict; the trace ends
  with the final answer in the task's format (`<answer>` for Countdown, `\\boxed{}` for math).
  The phrases are `jaxreason.behaviors`' constants (so its counter finds them), overridable.
- `direct_trace(tree, node_id, task)`: the root-to-n* steps only (the Direct baseline).
- `curate(trees, task, ...)`: per valid tree, `num_direct` traces with k = 0 and
  `num_search` traces with k drawn from `ks` (lowered to what the tree allows), as SFT
  records; and for each of them the Direct trace of the same correct terminal, so the two
  arms have the same number of examples on the same problems.
"""

from __future__ import annotations

import dataclasses
import random
import re
from typing import Any, Callable, Sequence

from jaxreason import behaviors
from jaxreason.search.trees import children_map, node_map, path_to, root_id


class LinearizeError(ValueError):
    """The tree cannot give the requested trace (no correct terminal, too few distinct wrong
    answers)."""


@dataclasses.dataclass(frozen=True)
class Phrases:
    reflection: str = behaviors.ASTRO_REFLECTION
    negative: str = behaviors.ASTRO_NEGATIVE_VERDICT
    positive: str = behaviors.ASTRO_POSITIVE_VERDICT
    backtrack: str = behaviors.ASTRO_BACKTRACK  # "{step}" is the target's description
    restart: str = behaviors.ASTRO_RESTART


def terminals(tree: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """(correct terminals, incorrect terminals) in depth-first order."""
    kids = children_map(tree)
    correct, wrong, stack = [], [], [root_id(tree)]
    nodes = node_map(tree)
    while stack:
        i = stack.pop()
        node = nodes[i]
        if node["terminal"]:
            (correct if node["correct"] else wrong).append(i)
        stack.extend(reversed(kids[i]))
    return correct, wrong


def _answer_key(node: dict[str, Any]) -> str:
    answer = node["answer"]
    return "\x00none" if answer is None else re.sub(r"\s+", "", str(answer))


def max_incorrect(tree: dict[str, Any]) -> int:
    """The most incorrect branches a trace of this tree can show (distinct wrong answers)."""
    _, wrong = terminals(tree)
    nodes = node_map(tree)
    return len({_answer_key(nodes[i]) for i in wrong})


def linearize(tree: dict[str, Any], num_incorrect: int, seed: int = 0, *,
              judge: Callable[[dict[str, Any], Any], bool] | None = None) -> list[Any]:
    """Node ids of one trace (root excluded); see the module docstring."""
    if num_incorrect < 0:
        raise ValueError(f"num_incorrect must be >= 0, got {num_incorrect}")
    rng = random.Random(seed)
    nodes = node_map(tree)
    correct, wrong = terminals(tree)
    if judge is not None:
        correct = [i for i in correct if judge(tree, i)]
    if not correct:
        raise LinearizeError(f"tree {tree['id']!r} has no correct terminal"
                             + (" the judge accepts" if judge is not None else ""))
    chosen = rng.choice(correct)
    by_answer: dict[str, list[Any]] = {}
    for i in wrong:
        by_answer.setdefault(_answer_key(nodes[i]), []).append(i)
    if len(by_answer) < num_incorrect:
        raise LinearizeError(f"tree {tree['id']!r} has {len(by_answer)} distinct wrong "
                             f"answers, {num_incorrect} requested")
    keys = rng.sample(sorted(by_answer), num_incorrect)
    picks = [rng.choice(by_answer[key]) for key in keys]
    sequence: list[Any] = []
    members: set[Any] = set()
    for target in picks + [chosen]:
        for i in path_to(tree, target, nodes=nodes):
            if i not in members:
                members.add(i)
                sequence.append(i)
    assert sequence and sequence[-1] == chosen, "a trace must end at its correct terminal"
    return sequence


def backtracks(tree: dict[str, Any], node_ids: Sequence[Any]) -> list[tuple[int, Any]]:
    """(position in `node_ids`, target) of each backtrack: the node at that position does not
    continue the previous one, and the trace returns to its parent (the root included)."""
    nodes = node_map(tree)
    root = root_id(tree)
    out = []
    previous = root
    for position, i in enumerate(node_ids):
        parent = nodes[i]["parent"]
        if parent != previous:
            out.append((position, parent))
        previous = i
    return out


# ----------------------------------------------------------------------------- rendering

def task_domain(task: Any) -> str:
    name = getattr(task, "name", str(task))
    return "countdown" if name == "countdown" else "math"


def step_separator(task: Any) -> str:
    return "\n" if task_domain(task) == "countdown" else "\n\n"


def _clean(text: str) -> str:
    return text.strip()


def describe_step(text: str, task: Any) -> str:
    """The '<short description of step a>' of the backtrack sentence (no LLM): Countdown
    'computed 44 + 19 = 63'; math 'wrote "<the step's first words>"'."""
    text = " ".join(_clean(text).split())
    if task_domain(task) == "countdown":
        if not re.search(r"\d", text):  # a tag line such as "<think>"
            return "started"
        return f"computed {text.rstrip('.')}"
    words = text.split(" ")
    short = " ".join(words[:12]) + (" ..." if len(words) > 12 else "")
    return f'wrote "{short}"'


def _target_description(nodes: dict[Any, dict[str, Any]], target: Any, task: Any) -> str:
    """Countdown tag lines say nothing: "<think>" reads "started", a closing tag is described
    by the nearest ancestor step that computed something."""
    if task_domain(task) == "countdown":
        node = nodes[target]
        while node["parent"] is not None and not re.search(r"\d", node["text"]) \
                and "<think>" not in node["text"]:
            node = nodes[node["parent"]]
        if node["parent"] is None:
            return "started"
        return describe_step(node["text"], task)
    return describe_step(nodes[target]["text"], task)


def answer_line(answer: str, task: Any) -> str:
    if task_domain(task) == "countdown":
        return f"<answer> {answer} </answer>"
    return f"The final answer is $\\boxed{{{answer}}}$."


def render_trace(tree: dict[str, Any], node_ids: Sequence[Any], task: Any, *,
                 phrases: Phrases = Phrases(), positive_q: float | None = None,
                 separator: str | None = None) -> str:
    """The chain of thought of a node sequence (see the module docstring)."""
    nodes = node_map(tree)
    sep = step_separator(task) if separator is None else separator
    jumps = dict(backtracks(tree, node_ids))
    root = root_id(tree)
    pieces: list[str] = []
    for position, i in enumerate(node_ids):
        if position in jumps and position > 0:
            target = jumps[position]
            back = (phrases.restart if target == root else
                    phrases.backtrack.format(step=_target_description(nodes, target, task)))
            pieces.append(f"{phrases.reflection} {phrases.negative} {back}")
        pieces.append(_clean(nodes[i]["text"]))
        last = position == len(node_ids) - 1
        followed_by_jump = (position + 1) in jumps
        node = nodes[i]
        if (not last and not followed_by_jump and not node["terminal"] and positive_q is not None
                and node["value"] >= positive_q):
            pieces.append(f"{phrases.reflection} {phrases.positive}")
    final = nodes[node_ids[-1]]
    pieces.append(f"{phrases.reflection} {phrases.positive}")
    if final["answer"] is not None:
        pieces.append(answer_line(final["answer"], task))
    return sep.join(pieces)


def direct_trace(tree: dict[str, Any], node_id: Any, task: Any, *,
                 separator: str | None = None) -> str:
    """The steps from the root to `node_id`, nothing else (the Direct baseline)."""
    nodes = node_map(tree)
    sep = step_separator(task) if separator is None else separator
    return sep.join(_clean(nodes[i]["text"]) for i in path_to(tree, node_id, nodes=nodes))


# ----------------------------------------------------------------------------- curation

@dataclasses.dataclass(frozen=True)
class CurationSettings:
    """num_direct: traces with k = 0 per tree (they still reflect at the end); num_search:
    traces with k drawn from `ks`; positive_q: Q above which an intermediate step gets the
    positive reflection (None: only after the final step); seed."""

    num_direct: int = 1
    num_search: int = 3
    ks: tuple[int, ...] = (0, 1, 2)
    positive_q: float | None = None
    seed: int = 0


def curate(trees: Sequence[dict[str, Any]], task: Any, settings: CurationSettings = CurationSettings(),
           *, prompt_fn: Callable[[Any], Any] | None = None, phrases: Phrases = Phrases(),
           judge: Callable[[dict[str, Any], Any], bool] | None = None
           ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """(ASTRO records, Direct records, counts). Each record: `prompt` (`prompt_fn(record)`,
    default the task's plain prompt), `completion`, `k`, `n_backtracks`, `tree_id`,
    `nodes` (the node ids). Trees without a correct terminal are skipped and counted."""
    prompt_fn = prompt_fn or (lambda record: task.prompt(record))
    astro, direct = [], []
    skipped = 0
    for t, tree in enumerate(trees):
        correct, _ = terminals(tree)
        if judge is not None:
            correct = [i for i in correct if judge(tree, i)]
        if not correct:
            skipped += 1
            continue
        limit = max_incorrect(tree)
        rng = random.Random(f"{settings.seed}:{tree['id']}")
        wanted = [0] * settings.num_direct + [rng.choice(settings.ks)
                                              for _ in range(settings.num_search)]
        prompt = prompt_fn(tree["record"])
        for j, k in enumerate(wanted):
            k = min(k, limit)
            ids = linearize(tree, k, seed=rng.randrange(2 ** 31), judge=judge)
            text = render_trace(tree, ids, task, phrases=phrases, positive_q=settings.positive_q)
            n_back = len(backtracks(tree, ids))
            common = {"prompt": prompt, "tree_id": tree["id"], "record": tree["record"]}
            astro.append({**common, "completion": text, "k": k, "n_backtracks": n_back,
                          "nodes": list(ids)})
            direct.append({**common, "completion": direct_trace(tree, ids[-1], task), "k": 0,
                           "n_backtracks": 0, "nodes": path_to(tree, ids[-1])})
    counts = {"trees": len(trees), "skipped_no_correct": skipped,
              "records_per_arm": len(astro),
              "mean_k": sum(r["k"] for r in astro) / len(astro) if astro else 0.0,
              "mean_backtracks": (sum(r["n_backtracks"] for r in astro) / len(astro)
                                  if astro else 0.0)}
    return astro, direct, counts
