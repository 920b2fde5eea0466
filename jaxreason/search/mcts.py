"""Step-level Monte Carlo tree search over many problems at once (ASTRO stage 1).

A node is one reasoning step: the text the policy writes up to a step delimiter (one line for
Countdown, a blank line for math). For every problem the search keeps a tree and repeats:

1. **Select** (per tree, on the host): from the root, follow the child with the highest PUCT
   score `Q(c) + c_puct * P(c) * sqrt(N(s)) / (1 + N(c))` until a node without children.
   `P` is the policy's prior among siblings: a softmax over the sibling candidates of their
   length-normalized log-probabilities (mean raw token log-prob of the step).
2. **Expand**: sample `k` candidate next steps of the selected leaf and add one child per
   distinct candidate (identical token sequences are merged). A child is terminal when its
   step holds a final answer (the task extracts one from the text so far), ends the solution
   (EOS), is cut by the step budget, or sits at `max_depth`; its reward is the task's grade.
3. **Simulate**: from each new non-terminal child, `M` full rollouts; `R(child)` is their mean
   reward (a terminal child's `R` is its own reward). New children start at `N = 1, Q = R`.
4. **Back up** along the selected path, leaf first: `N(s) += 1` and
   `Q(s) = (sum_c Q(c) N(c) + R(s)) / (sum_c N(c) + 1)` over the children c of s (a node
   without children has `Q = R`; the root has no `R` and averages its children).
   A selected terminal is not expanded: its visit is backed up the same way.

Batching: all trees advance together. An iteration makes ONE `continue_steps` call for the
expansions of every tree (k samples per leaf, the leaf's prefix prefilled once) and ONE
`generate` call for the rollouts of every new child (M samples per child), then grades all
terminal children and rollouts in one `grade_batch`. Selection and backup are host work on
small Python trees. `max_leaves_per_call` splits the calls (1 = one leaf at a time; the
baseline of `bench/mcts.py`).

Determinism: the seed of each call is a function of (`seed`, the batch id, the iteration,
the phase), and a sample depends only on that seed and its row's position, so the same batch
of problems searched again gives the same trees. Budget: `iterations` selections per tree
(a tree whose every leaf is terminal stops early) and `max_depth` steps.
"""

from __future__ import annotations

import dataclasses
import math
import time
import zlib
from typing import Any, Callable, Sequence

import numpy as np

from jaxreason.sampling.params import FINISH_STOP_STRING, SamplingParams


@dataclasses.dataclass(frozen=True)
class MCTSSettings:
    """k: candidate steps sampled per expansion; rollouts: M full rollouts per new child;
    iterations: selections per tree; max_depth: steps at most (a node at this depth is
    terminal); c_puct: exploration weight; delimiter: the step's stop strings;
    max_step_tokens / max_rollout_tokens: token budgets of one step / one rollout;
    temperature / top_p: sampling of steps and rollouts; seed; grading_workers: processes
    grading terminal steps and rollouts (0: in this process); max_leaves_per_call: leaves per
    device call (0: all leaves of all trees in one call)."""

    k: int = 4
    rollouts: int = 4
    iterations: int = 16
    max_depth: int = 4
    c_puct: float = 1.0
    delimiter: tuple[str, ...] = ("\n",)
    max_step_tokens: int = 32
    max_rollout_tokens: int = 128
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    grading_workers: int | None = 0
    grading_timeout_s: float = 10.0
    max_leaves_per_call: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "delimiter", tuple(self.delimiter))
        for name in ("k", "rollouts", "iterations", "max_depth", "max_step_tokens",
                     "max_rollout_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"MCTSSettings.{name} must be >= 1, got {getattr(self, name)}")
        if self.c_puct < 0:
            raise ValueError(f"MCTSSettings.c_puct must be >= 0, got {self.c_puct}")
        if not self.delimiter:
            raise ValueError("MCTSSettings.delimiter: give at least one step delimiter")


@dataclasses.dataclass
class Node:
    id: int
    parent: int | None
    depth: int
    text: str = ""
    tokens: list[int] = dataclasses.field(default_factory=list)
    prior: float = 1.0
    visits: int = 0
    value: float = 0.0
    rollout_reward: float | None = None
    terminal: bool = False
    answer: str | None = None
    correct: bool | None = None
    children: list[int] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Tree:
    """One problem's search tree in memory. `id` / `record` go to the tree file; `prompt` is
    the problem's prompt token ids."""

    id: Any
    record: Any
    prompt: list[int]
    nodes: list[Node] = dataclasses.field(default_factory=list)
    iterations: int = 0
    done: bool = False

    def __post_init__(self) -> None:
        if not self.nodes:
            self.nodes.append(Node(id=0, parent=None, depth=0))

    def add(self, parent: int, **fields: Any) -> Node:
        node = Node(id=len(self.nodes), parent=parent, depth=self.nodes[parent].depth + 1,
                    **fields)
        self.nodes.append(node)
        self.nodes[parent].children.append(node.id)
        return node

    def path(self, node_id: int) -> list[int]:
        """Node ids root-exclusive down to `node_id`."""
        out = []
        while self.nodes[node_id].parent is not None:
            out.append(node_id)
            node_id = self.nodes[node_id].parent
        return out[::-1]

    def path_tokens(self, node_id: int) -> list[int]:
        return [t for i in self.path(node_id) for t in self.nodes[i].tokens]

    def path_text(self, node_id: int) -> str:
        return "".join(self.nodes[i].text for i in self.path(node_id))

    def expandable(self) -> bool:
        return any(not n.children and not n.terminal for n in self.nodes)

    def to_dict(self) -> dict[str, Any]:
        """The tree-file object (`jaxreason.search.trees`)."""
        return {"id": self.id, "record": self.record, "nodes": [
            {"id": n.id, "parent": n.parent, "text": n.text, "depth": n.depth,
             "visits": int(n.visits), "value": float(n.value),
             "rollout_reward": None if n.rollout_reward is None else float(n.rollout_reward),
             "terminal": bool(n.terminal), "answer": n.answer,
             "correct": None if n.correct is None else bool(n.correct),
             "prior": float(n.prior)} for n in self.nodes]}


# ----------------------------------------------------------------------------- the formulas

def step_priors(mean_logprobs: Sequence[float]) -> np.ndarray:
    """The policy prior over sibling candidates: softmax of their length-normalized
    log-probabilities."""
    x = np.asarray(mean_logprobs, np.float64)
    x = x - x.max()
    e = np.exp(x)
    return e / e.sum()


def puct_scores(tree: Tree, node_id: int, c_puct: float) -> np.ndarray:
    """PUCT score of each child of `node_id` (in `children` order)."""
    parent = tree.nodes[node_id]
    sqrt_n = math.sqrt(max(parent.visits, 0))
    return np.array([tree.nodes[c].value + c_puct * tree.nodes[c].prior * sqrt_n
                     / (1 + tree.nodes[c].visits) for c in parent.children], np.float64)


def select(tree: Tree, c_puct: float) -> int:
    """The node to expand (or a terminal to revisit): descend by PUCT from the root while the
    node has children; ties go to the earlier child."""
    node_id = 0
    while tree.nodes[node_id].children:
        scores = puct_scores(tree, node_id, c_puct)
        node_id = tree.nodes[node_id].children[int(np.argmax(scores))]
    return node_id


def node_value(tree: Tree, node_id: int) -> float:
    """`(sum_c Q(c) N(c) + R(s)) / (sum_c N(c) + 1)`; without R (the root): the children's
    visit-weighted mean; without children: R."""
    node = tree.nodes[node_id]
    weighted = sum(tree.nodes[c].value * tree.nodes[c].visits for c in node.children)
    count = sum(tree.nodes[c].visits for c in node.children)
    if node.rollout_reward is None:
        return weighted / count if count else 0.0
    return (weighted + node.rollout_reward) / (count + 1)


def backup(tree: Tree, node_id: int) -> None:
    """After expanding (or revisiting) `node_id`: from it up to the root, N += 1 and Q is
    recomputed from the children (`node_value`)."""
    current: int | None = node_id
    while current is not None:
        node = tree.nodes[current]
        node.visits += 1
        node.value = node_value(tree, current)
        current = node.parent


# ----------------------------------------------------------------------------- the search

@dataclasses.dataclass
class SearchStats:
    """Where the time went and how much was done."""

    expansions: int = 0  # leaves expanded
    children: int = 0  # nodes added
    rollouts: int = 0
    expand_calls: int = 0
    rollout_calls: int = 0
    expand_s: float = 0.0
    rollout_s: float = 0.0
    grade_s: float = 0.0
    host_s: float = 0.0
    step_tokens: int = 0
    rollout_tokens: int = 0

    def add(self, other: "SearchStats") -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def call_seed(seed: int, batch_id: Any, iteration: int, phase: str, part: int = 0) -> int:
    return zlib.crc32(f"{seed}:{batch_id}:{iteration}:{phase}:{part}".encode()) % 2 ** 31


def _decode(sampler: Any, tokens: Sequence[int]) -> str:
    if sampler.tokenizer is None:
        return ""
    return sampler.tokenizer.decode(list(tokens), skip_special_tokens=True,
                                    clean_up_tokenization_spaces=False)


def _chunks(items: list, size: int) -> list[list]:
    if size <= 0 or size >= len(items):
        return [items] if items else []
    return [items[i:i + size] for i in range(0, len(items), size)]


def search_trees(sampler: Any, task: Any, trees: list[Tree], settings: MCTSSettings, *,
                 batch_id: Any = 0, params: Any = None,
                 on_finish: Callable[[Tree], None] | None = None,
                 grade_fn: Callable[[list, list], list] | None = None) -> SearchStats:
    """Search all `trees` together (see the module docstring); `on_finish(tree)` is called as
    each tree finishes (budget spent or nothing left to expand). `grade_fn(records, texts)`
    replaces the task's grading (tests); it returns `tasks.Grade`s."""
    from jaxreason.generation import continue_steps, generate

    stats = SearchStats()
    if grade_fn is None:
        from jaxreason.tasks import grade_batch

        def grade_fn(records, texts):
            return grade_batch(task, records, texts, num_workers=settings.grading_workers,
                               item_timeout_s=settings.grading_timeout_s)

    def finish(tree: Tree) -> None:
        tree.done = True
        if on_finish is not None:
            on_finish(tree)

    for tree in trees:
        if not tree.expandable():
            finish(tree)
    for iteration in range(settings.iterations):
        t0 = time.perf_counter()
        open_trees = [t for t in trees if not t.done]
        if not open_trees:
            break
        leaves: list[tuple[Tree, int]] = []
        for tree in open_trees:
            leaf = select(tree, settings.c_puct)
            if tree.nodes[leaf].terminal:
                backup(tree, leaf)  # a terminal's revisit: no device work
            else:
                leaves.append((tree, leaf))
        stats.host_s += time.perf_counter() - t0
        for part, group in enumerate(_chunks(leaves, settings.max_leaves_per_call)):
            _expand(sampler, task, group, settings, stats, batch_id, iteration, part, params,
                    grade_fn, continue_steps, generate)
        t0 = time.perf_counter()
        for tree in open_trees:
            tree.iterations += 1
            if tree.iterations >= settings.iterations or not tree.expandable():
                finish(tree)
        stats.host_s += time.perf_counter() - t0
    for tree in trees:
        if not tree.done:
            finish(tree)
    return stats


def _expand(sampler, task, leaves, settings, stats, batch_id, iteration, part, params,
            grade_fn, continue_steps, generate) -> None:
    k, m = settings.k, settings.rollouts
    step_sampling = SamplingParams(
        temperature=settings.temperature, top_p=settings.top_p, n=k,
        max_new_tokens=settings.max_step_tokens, stop=settings.delimiter,
        seed=call_seed(settings.seed, batch_id, iteration, "expand", part))
    t0 = time.perf_counter()
    steps = continue_steps(sampler, [t.prompt + t.path_tokens(leaf) for t, leaf in leaves],
                           step_sampling, params=params)
    stats.expand_s += time.perf_counter() - t0
    stats.expand_calls += 1
    stats.expansions += len(leaves)
    stats.step_tokens += int(steps.lengths.sum())

    t0 = time.perf_counter()
    new: list[tuple[Tree, Node]] = []
    for li, (tree, leaf) in enumerate(leaves):
        rows = np.nonzero(steps.prompt_index == li)[0]
        seen: dict[tuple, int] = {}
        cands = []  # (tokens, mean logprob, finish code)
        for r in rows:
            tokens = tuple(steps.token_ids(int(r)))
            if tokens in seen:
                continue
            seen[tokens] = len(cands)
            length = max(int(steps.lengths[r]), 1)
            cands.append((tokens, float(steps.raw_logprobs[r, :length].sum()) / length,
                          int(steps.finish_codes[r])))
        priors = step_priors([c[1] for c in cands])
        for (tokens, _, code), prior in zip(cands, priors):
            node = tree.add(leaf, tokens=list(tokens), text=_decode(sampler, tokens),
                            prior=float(prior))
            text = tree.path_text(node.id)
            node.terminal = (code != FINISH_STOP_STRING or node.depth >= settings.max_depth
                             or _has_answer(task, text))
            new.append((tree, node))
    stats.children += len(new)
    stats.host_s += time.perf_counter() - t0

    open_children = [(t, n) for t, n in new if not n.terminal]
    rollouts = None
    if open_children:
        t0 = time.perf_counter()
        rollouts = generate(sampler, [t.prompt + t.path_tokens(n.id) for t, n in open_children],
                            SamplingParams(temperature=settings.temperature,
                                           top_p=settings.top_p, n=m,
                                           max_new_tokens=settings.max_rollout_tokens,
                                           seed=call_seed(settings.seed, batch_id, iteration,
                                                          "rollout", part)),
                            params=params)
        stats.rollout_s += time.perf_counter() - t0
        stats.rollout_calls += 1
        stats.rollouts += rollouts.num_rows
        stats.rollout_tokens += int(rollouts.lengths.sum())

    t0 = time.perf_counter()
    terminals = [(t, n) for t, n in new if n.terminal]
    records = [t.record for t, _ in terminals]
    texts = [t.path_text(n.id) for t, n in terminals]
    if rollouts is not None:
        for r in range(rollouts.num_rows):
            t, n = open_children[int(rollouts.prompt_index[r])]
            records.append(t.record)
            texts.append(t.path_text(n.id) + rollouts.texts[r])
    grades = list(grade_fn(records, texts)) if texts else []
    stats.grade_s += time.perf_counter() - t0

    t0 = time.perf_counter()
    for (t, n), g in zip(terminals, grades[: len(terminals)]):
        n.rollout_reward = float(g.reward)
        n.answer = g.extracted
        n.correct = bool(g.correct)
    rest = grades[len(terminals):]
    for i, (t, n) in enumerate(open_children):
        n.rollout_reward = float(np.mean([g.reward for g in rest[i * m:(i + 1) * m]]))
    for t, n in new:
        n.visits, n.value = 1, float(n.rollout_reward)
    for tree, leaf in leaves:
        backup(tree, leaf)
    stats.host_s += time.perf_counter() - t0


def _has_answer(task: Any, text: str) -> bool:
    try:
        return task.extract(text) is not None
    except Exception:  # noqa: BLE001 - an extractor error means no answer
        return False


# ----------------------------------------------------------------------------- statistics

def tree_stats(trees: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Figures of tree-file objects: how many, valid-tree rate (a correct terminal), mean
    nodes, and Q on correct paths vs their siblings: for every node on a root-to-correct-
    terminal path with at least one sibling off every correct path, the node's Q and the mean
    Q of those siblings."""
    from jaxreason.search.trees import children_map, node_map, path_to

    valid, sizes, path_q, sibling_q, wins = 0, [], [], [], 0
    for tree in trees:
        nodes = node_map(tree)
        kids = children_map(tree)
        sizes.append(len(tree["nodes"]))
        correct = [n["id"] for n in tree["nodes"] if n["terminal"] and n["correct"]]
        if correct:
            valid += 1
        on_path = {i for c in correct for i in path_to(tree, c, nodes=nodes)}
        for i in on_path:
            siblings = [s for s in kids[nodes[i]["parent"]] if s not in on_path]
            if siblings:
                q, sq = nodes[i]["value"], float(np.mean([nodes[s]["value"] for s in siblings]))
                path_q.append(q)
                sibling_q.append(sq)
                wins += q > sq
    n = len(trees)
    return {"num_trees": n, "valid_trees": valid, "valid_tree_rate": valid / n if n else 0.0,
            "mean_nodes": float(np.mean(sizes)) if sizes else 0.0,
            "q_pairs": len(path_q),
            "q_correct_path": float(np.mean(path_q)) if path_q else None,
            "q_siblings": float(np.mean(sibling_q)) if sibling_q else None,
            "q_path_above_sibling_share": wins / len(path_q) if path_q else None}
