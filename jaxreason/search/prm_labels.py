"""Process-reward labels from search trees (Math-Shepherd style, no human labels), and the
`prm_labels` data stage that writes them.

A node of an MCTS tree (`jaxreason.search.mcts`) is one step, and the search already measured
how good it is: `rollout_reward` (R) is the mean reward of the M rollouts completed from it,
and `value` (Q) backs R up with everything searched below it. Turned into a success rate
`p = (reward - reward_incorrect) / (reward_correct - reward_incorrect)` (clipped to [0, 1];
the rewards of the tree's preset, e.g. astro's +1 / -1), a step is labelled

- soft: `p` (the estimated chance that a completion from here reaches the right answer);
- hard: `1 if p > hard_threshold else 0` (threshold 0: some rollout reached it, Math-Shepherd's
  hard estimate).

A terminal step's label is its own grade (1 correct, 0 not). `value="q"` reads Q (more
samples: the subtree's terminals and rollouts), `value="rollouts"` reads R (the node's own
M rollouts only).

One record per root-to-leaf path (`paths="leaves"`; `"terminal"`: only paths that end in a
terminal, i.e. whole solutions): `{"prompt", "steps": [step texts], "labels": [one per step],
"tree_id", "leaf", "terminal", "correct"}` (`correct`: the terminal's grade, null for an open
leaf). Trees are split by id into training and held-out records (`held_out_share`), so no
problem is on both sides; the held-out solutions are where a PRM's ranking is measured (AUC).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import zlib
from typing import Any, Callable, Sequence

from jaxreason.search.trees import children_map, node_map, path_to, root_id

log = logging.getLogger(__name__)

LABEL_KINDS = ("soft", "hard")
LABEL_VALUES = ("q", "rollouts")
PATH_KINDS = ("leaves", "terminal")


@dataclasses.dataclass(frozen=True)
class LabelSettings:
    """labels: soft | hard; value: q | rollouts (which estimate of the node's success rate);
    hard_threshold: a hard label is 1 when p exceeds it; paths: leaves | terminal;
    reward_correct / reward_incorrect: the rewards of a right / wrong answer in the trees
    (the search's reward preset), which map a mean reward to a success rate."""

    labels: str = "soft"
    value: str = "q"
    hard_threshold: float = 0.0
    paths: str = "leaves"
    reward_correct: float = 1.0
    reward_incorrect: float = -1.0

    def __post_init__(self) -> None:
        for name, allowed in (("labels", LABEL_KINDS), ("value", LABEL_VALUES),
                              ("paths", PATH_KINDS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}: {getattr(self, name)!r} is not one of {allowed}")
        if self.reward_correct <= self.reward_incorrect:
            raise ValueError(f"reward_correct ({self.reward_correct}) must exceed "
                             f"reward_incorrect ({self.reward_incorrect})")
        if not 0.0 <= self.hard_threshold < 1.0:
            raise ValueError(f"hard_threshold: must be in [0, 1), got {self.hard_threshold}")


def success_rate(reward: float, settings: LabelSettings) -> float:
    """A mean reward as the share of successes, clipped to [0, 1]."""
    span = settings.reward_correct - settings.reward_incorrect
    return min(1.0, max(0.0, (float(reward) - settings.reward_incorrect) / span))


def step_label(node: dict[str, Any], settings: LabelSettings) -> float:
    """The label of one node (see the module docstring)."""
    if node["terminal"] and node["correct"] is not None:
        return 1.0 if node["correct"] else 0.0
    reward = node["value"] if settings.value == "q" else node["rollout_reward"]
    if reward is None:  # never simulated (should not happen below the root)
        reward = node["value"]
    p = success_rate(reward, settings)
    if settings.labels == "hard":
        return 1.0 if p > settings.hard_threshold else 0.0
    return p


def tree_step_records(tree: dict[str, Any], settings: LabelSettings, prompt: Any
                      ) -> list[dict[str, Any]]:
    """One step record per root-to-leaf path of `tree` (leaves in file order)."""
    nodes = node_map(tree)
    kids = children_map(tree)
    root = root_id(tree)
    out = []
    for node in tree["nodes"]:
        if node["id"] == root or kids[node["id"]]:
            continue
        if settings.paths == "terminal" and not node["terminal"]:
            continue
        path = path_to(tree, node["id"], nodes=nodes)
        out.append({"prompt": prompt, "steps": [nodes[i]["text"] for i in path],
                    "labels": [step_label(nodes[i], settings) for i in path],
                    "tree_id": tree["id"], "leaf": node["id"],
                    "terminal": bool(node["terminal"]),
                    "correct": node["correct"] if node["terminal"] else None})
    return out


def is_held_out(tree_id: Any, share: float, seed: int) -> bool:
    """Whether a tree goes to the held-out side (a hash of (seed, id): stable across runs)."""
    if share <= 0:
        return False
    bucket = zlib.crc32(f"{seed}:{tree_id}".encode()) % 10_000
    return bucket < share * 10_000


def step_records(trees: Sequence[dict[str, Any]], settings: LabelSettings,
                 prompt_fn: Callable[[Any], Any], *, held_out_share: float = 0.0, seed: int = 0
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(training records, held-out records) of all trees; `prompt_fn(task record)` renders a
    tree's prompt."""
    train, held_out = [], []
    for tree in trees:
        records = tree_step_records(tree, settings, prompt_fn(tree["record"]))
        (held_out if is_held_out(tree["id"], held_out_share, seed) else train).extend(records)
    return train, held_out


def label_stats(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """How many records and steps, the mean label, and the share of whole solutions that are
    correct."""
    labels = [x for r in records for x in r["labels"]]
    solutions = [r for r in records if r["terminal"]]
    return {"records": len(records), "steps": len(labels),
            "mean_label": sum(labels) / len(labels) if labels else None,
            "solutions": len(solutions),
            "correct_solutions": sum(1 for r in solutions if r["correct"])}


# ----------------------------------------------------------------------------- the stage

def prm_labels(config: Any, workdir: str) -> dict[str, Any]:
    """The `prm_labels` data stage: `prm_labels.trees` -> `steps.jsonl` (training) and
    `steps_held_out.jsonl` (the trees set aside by `prm_labels.held_out_share`)."""
    from jaxreason.search.stages import _task
    from jaxreason.search.trees import read_trees
    from jaxreason.tasks.base import RewardConfig
    from jaxreason.train.data_stages import _finish, _is_writer, finished, write_jsonl
    from jaxreason.train.errors import ConfigError

    done = finished(workdir)
    if done is not None:
        return done
    p = config.prm_labels
    if not p.trees or not os.path.exists(p.trees):
        raise ConfigError(f"prm_labels.trees: a tree file is needed (e.g. "
                          f"'stage:search.trees'), got {p.trees!r}")
    if not 0.0 <= float(p.held_out_share) < 1.0:
        raise ConfigError(f"prm_labels.held_out_share: must be in [0, 1), got "
                          f"{p.held_out_share}")
    try:
        reward = RewardConfig.preset(config.search.reward)
    except ValueError as e:
        raise ConfigError(f"search.reward: {e}") from None
    try:
        settings = LabelSettings(labels=p.labels, value=p.value,
                                 hard_threshold=float(p.hard_threshold), paths=p.paths,
                                 reward_correct=reward.reward_correct,
                                 reward_incorrect=reward.reward_incorrect)
    except ValueError as e:
        raise ConfigError(f"prm_labels.{e}") from None
    task = _task(config, "search.task")
    chat = bool(config.data.chat)
    trees = read_trees(p.trees)
    train, held_out = step_records(trees, settings, lambda r: task.prompt(r, chat=chat),
                                   held_out_share=float(p.held_out_share), seed=int(config.seed))
    if not train:
        raise ConfigError(f"prm_labels.trees: {p.trees} gave no training records (all "
                          f"{len(trees)} trees held out, or no paths of kind {p.paths!r})")
    os.makedirs(workdir, exist_ok=True)
    outputs = {"steps": os.path.join(workdir, "steps.jsonl"),
               "steps_held_out": os.path.join(workdir, "steps_held_out.jsonl")}
    if _is_writer():
        write_jsonl(outputs["steps"], train)
        write_jsonl(outputs["steps_held_out"], held_out)
    summary = {"status": "completed", "outputs": outputs, "trees": len(trees),
               "train": label_stats(train), "held_out": label_stats(held_out),
               "settings": dataclasses.asdict(settings)}
    print(f"[{os.path.basename(workdir)}] {summary['train']['records']} training paths "
          f"({summary['train']['steps']} steps, mean label {summary['train']['mean_label']:.3f}),"
          f" {summary['held_out']['records']} held-out paths", flush=True)
    return _finish(workdir, summary)


prm_labels.outputs = ("steps", "steps_held_out")  # type: ignore[attr-defined]
