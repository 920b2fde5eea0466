"""Expert trajectories and SRL step instances (pure Python, no JAX).

A trajectory is `{"id", "problem", "steps": [str, ...], "final_answer"}`; a file may instead
hold a whole solution text per record (`solution_field`), split into steps by a parser:

- `numbered`: a step starts at a line `1.` / `2)` ...;
- `step`: a step starts at a line `Step 3:` (any case, `Step 3.` too);
- `bold`: a step starts at a markdown bold header line (`**Step 2: ...**`, `**Compute x**`);
- `blank`: steps are the paragraphs between blank lines;
- `lines`: one step per non-empty line (Countdown's `a op b = c` steps);
- `auto`: the first of numbered, step, bold that finds at least two steps, else blank.

Text before the first header (a preamble) is dropped by the header parsers. A trajectory with
N steps gives the step instances k = k_start .. k_end (default 2 .. N: N - 1 instances), each
`{"id", "traj_id", "k", "num_steps", "problem", "previous_steps": steps[:k-1],
"target_step": steps[k-1], "final_answer"}` plus the trajectory's extra fields (under
"meta"). `split_trajectories` splits by whole trajectory, so no solution has steps on both
sides. Countdown trajectories come from the solver (`countdown_trajectory`).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Callable, Iterable, Mapping, Sequence

Trajectory = dict[str, Any]

_NUMBERED = re.compile(r"^[ \t]*\d{1,4}[.)][ \t]+\S")
_STEP = re.compile(r"^[ \t]*(?:#+[ \t]*)?\**[ \t]*step[ \t]+\d{1,4}[ \t]*[:.]", re.IGNORECASE)
_BOLD = re.compile(r"^[ \t]*\*\*[^*\n]{1,200}\*\*[ \t]*:?[ \t]*$|^[ \t]*\*\*[^*\n]{1,200}:\*\*")


class TrajectoryError(ValueError):
    """A bad trajectory record: the message names the file, the line and the field."""


def _split_at(lines: list[str], starts: Callable[[str], bool]) -> list[str]:
    steps: list[list[str]] = []
    for line in lines:
        if starts(line):
            steps.append([line])
        elif steps:
            steps[-1].append(line)
    return [s for s in ("\n".join(block).strip() for block in steps) if s]


def split_numbered(text: str) -> list[str]:
    return _split_at(text.splitlines(), lambda line: bool(_NUMBERED.match(line)))


def split_step_headers(text: str) -> list[str]:
    return _split_at(text.splitlines(), lambda line: bool(_STEP.match(line)))


def split_bold_headers(text: str) -> list[str]:
    return _split_at(text.splitlines(), lambda line: bool(_BOLD.match(line)))


def split_blank_lines(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n[ \t]*\n", text) if p.strip()]


def split_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def split_auto(text: str) -> list[str]:
    for parser in (split_numbered, split_step_headers, split_bold_headers):
        steps = parser(text)
        if len(steps) >= 2:
            return steps
    return split_blank_lines(text)


PARSERS: dict[str, Callable[[str], list[str]]] = {
    "numbered": split_numbered, "step": split_step_headers, "bold": split_bold_headers,
    "blank": split_blank_lines, "lines": split_lines, "auto": split_auto,
}


def split_solution(text: str, parser: str = "auto") -> list[str]:
    """The steps of a solution text by the named parser (see the module docstring)."""
    if parser not in PARSERS:
        raise ValueError(f"unknown step parser {parser!r}; known: {sorted(PARSERS)}")
    return PARSERS[parser](text)


# ----------------------------------------------------------------------------- trajectories

def check_trajectory(record: Any, *, where: str, parser: str | None = None,
                     solution_field: str = "solution", min_steps: int = 1) -> Trajectory:
    """A validated trajectory from a raw record; `where` ("file:line") prefixes errors."""
    if not isinstance(record, Mapping):
        raise TrajectoryError(f"{where}: a trajectory must be a JSON object, got "
                              f"{type(record).__name__}")
    for field in ("id", "problem"):
        if field not in record:
            raise TrajectoryError(f"{where}: field {field!r}: missing")
    if not isinstance(record["problem"], str) or not record["problem"].strip():
        raise TrajectoryError(f"{where}: field 'problem': must be a non-empty string")
    if "steps" in record and record["steps"] is not None:
        steps = record["steps"]
        if not isinstance(steps, list):
            raise TrajectoryError(f"{where}: field 'steps': must be a list of strings, got "
                                  f"{type(steps).__name__}")
        for i, step in enumerate(steps):
            if not isinstance(step, str) or not step.strip():
                raise TrajectoryError(f"{where}: field 'steps[{i}]': must be a non-empty "
                                      f"string")
        steps = [s.strip() for s in steps]
    elif solution_field in record:
        solution = record[solution_field]
        if not isinstance(solution, str):
            raise TrajectoryError(f"{where}: field {solution_field!r}: must be a string")
        steps = split_solution(solution, parser or "auto")
    else:
        raise TrajectoryError(f"{where}: field 'steps': missing (or give a "
                              f"{solution_field!r} text to split into steps)")
    if len(steps) < min_steps:
        raise TrajectoryError(f"{where}: field 'steps': {len(steps)} steps, fewer than "
                              f"{min_steps}")
    out = {"id": str(record["id"]), "problem": record["problem"], "steps": steps,
           "final_answer": record.get("final_answer")}
    extra = {k: v for k, v in record.items()
             if k not in ("id", "problem", "steps", "final_answer", solution_field)}
    if extra:
        out["meta"] = extra
    return out


def read_trajectories(path: str, *, parser: str | None = None, solution_field: str = "solution",
                      min_steps: int = 1) -> list[Trajectory]:
    """Trajectories from a .jsonl file (or a .json list); errors name file, line and field.
    Ids must be unique (the validation split is by id)."""
    if parser is not None and parser not in PARSERS:
        raise ValueError(f"unknown step parser {parser!r}; known: {sorted(PARSERS)}")
    with open(path) as f:
        if path.endswith(".json"):
            try:
                rows = json.load(f)
            except json.JSONDecodeError as e:
                raise TrajectoryError(f"{path}: line {e.lineno}: not valid JSON: {e.msg}"
                                      ) from None
            if not isinstance(rows, list):
                raise TrajectoryError(f"{path}: a .json trajectory file must hold a list")
            numbered: Iterable[tuple[str, Any]] = ((f"{path}: item {i}", r)
                                                   for i, r in enumerate(rows))
        else:
            numbered = list(_jsonl_rows(path, f))
    out, seen = [], {}
    for where, row in numbered:
        trajectory = check_trajectory(row, where=where, parser=parser,
                                      solution_field=solution_field, min_steps=min_steps)
        if trajectory["id"] in seen:
            raise TrajectoryError(f"{where}: field 'id': {trajectory['id']!r} repeats "
                                  f"{seen[trajectory['id']]}")
        seen[trajectory["id"]] = where
        out.append(trajectory)
    return out


def _jsonl_rows(path: str, f: Any) -> Iterable[tuple[str, Any]]:
    for number, line in enumerate(f, 1):
        if not line.strip():
            continue
        try:
            yield f"{path}: line {number}", json.loads(line)
        except json.JSONDecodeError as e:
            raise TrajectoryError(f"{path}: line {number}: not valid JSON: {e.msg}") from None


# ----------------------------------------------------------------------------- instances

def k_range(num_steps: int, k_start: int = 2, k_end: int = 0) -> range:
    """The targets k (1-based) of a trajectory with `num_steps` steps: k_start .. k_end, where
    k_end <= 0 counts from the end (0: N, -1: N - 1)."""
    if k_start < 1:
        raise ValueError(f"k_start must be >= 1, got {k_start}")
    end = k_end if k_end > 0 else num_steps + k_end
    return range(k_start, min(end, num_steps) + 1)


def step_instances(trajectory: Mapping[str, Any], *, k_start: int = 2, k_end: int = 0
                   ) -> list[dict[str, Any]]:
    """The SRL records of one trajectory (default k = 2..N: N - 1 instances)."""
    steps = list(trajectory["steps"])
    out = []
    for k in k_range(len(steps), k_start, k_end):
        record = {"id": f"{trajectory['id']}#{k}", "traj_id": trajectory["id"], "k": k,
                  "num_steps": len(steps), "problem": trajectory["problem"],
                  "previous_steps": steps[:k - 1], "target_step": steps[k - 1],
                  "final_answer": trajectory.get("final_answer")}
        if trajectory.get("meta"):
            record["meta"] = trajectory["meta"]
        out.append(record)
    return out


def all_step_instances(trajectories: Iterable[Mapping[str, Any]], *, k_start: int = 2,
                       k_end: int = 0) -> list[dict[str, Any]]:
    return [r for t in trajectories for r in step_instances(t, k_start=k_start, k_end=k_end)]


def split_trajectories(trajectories: Sequence[Mapping[str, Any]], val_fraction: float,
                       seed: int = 0) -> tuple[list[Any], list[Any]]:
    """(train, validation) by whole trajectory: a trajectory goes to validation when a hash
    of (seed, id) falls under `val_fraction` (stable under reordering and additions), with
    at least one validation trajectory when val_fraction > 0 and there are two or more."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")

    def score(t: Mapping[str, Any]) -> float:
        digest = hashlib.sha256(f"{seed}:{t['id']}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2 ** 64

    scores = [score(t) for t in trajectories]
    val = [s < val_fraction for s in scores]
    if val_fraction > 0 and not any(val) and len(trajectories) >= 2:
        val[min(range(len(scores)), key=scores.__getitem__)] = True
    return ([t for t, v in zip(trajectories, val) if not v],
            [t for t, v in zip(trajectories, val) if v])


# ----------------------------------------------------------------------------- Countdown

COUNTDOWN_PROBLEM = ("Using the numbers {nums}, make {target}. Combine two numbers at a time "
                     "with +, -, * or /; use each number exactly once.")


def countdown_id(record: Mapping[str, Any]) -> str:
    return f"cd-{'-'.join(str(int(n)) for n in record['nums'])}-{int(record['target'])}"


def countdown_trajectory(record: Mapping[str, Any], *, integer_only: bool = True
                         ) -> Trajectory | None:
    """The solver's canonical steps (`a op b = c`, one per combination) as a trajectory, or
    None when the instance has no solution. The Countdown record is kept under "meta" (its
    `nums` and `target`), so outcome-reward stages can grade the same problems."""
    from jaxreason.tasks.countdown_solver import solve

    nums, target = [int(n) for n in record["nums"]], int(record["target"])
    solution = solve(nums, target, integer_only=integer_only) or (
        None if integer_only else solve(nums, target))
    if solution is None or not solution.steps:
        return None
    return {"id": str(record.get("id") or countdown_id(record)),
            "problem": COUNTDOWN_PROBLEM.format(nums=nums, target=target),
            "steps": list(solution.steps), "final_answer": solution.expression,
            "meta": {"nums": nums, "target": target}}


def countdown_srl_split(options: Mapping[str, Any], seed: int
                        ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Generator "countdown_srl": (train, validation) SRL step instances of solver
    trajectories of generated Countdown instances (the "countdown" generator's options, plus
    k_start (default 2), k_end (0: N) and val_fraction (default 0.1, split by trajectory))."""
    from jaxreason.data.synthetic import countdown_split

    train, held_out = countdown_split(options, seed)
    trajectories = [t for t in (countdown_trajectory(r) for r in train + held_out) if t]
    k_start, k_end = int(options.get("k_start", 2)), int(options.get("k_end", 0))
    tr, va = split_trajectories(trajectories, float(options.get("val_fraction", 0.1)), seed)
    return (all_step_instances(tr, k_start=k_start, k_end=k_end),
            all_step_instances(va, k_start=k_start, k_end=k_end))
