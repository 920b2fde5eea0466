"""Pipeline data stages of ASTRO: `step_data`, `search`, `clone` (registered in
`jaxreason.train`; see docs/astro.md).

- `step_data` (Countdown recipes): the `data.generator` records (`train`, `held_out`), a
  warm-up SFT file `warmup` of one-step-per-line solutions (`step_data.random_share` of them
  random legal step sequences, the rest the solver's), and a byte-level BPE `tokenizer`
  trained on those texts plus ASTRO's fixed phrases (so a reflection costs a few tokens).
- `search`: step-level MCTS (`jaxreason.search.mcts`) from the current model on the first
  `search.num_problems` training records, in batches of `search.batch_size` problems; every
  process searches the batches `b % process_count == process_index` and appends each finished
  tree to its own file `trees.p<process>.jsonl`; process 0 then writes `trees.jsonl` (all
  trees, by id). A restarted stage keeps the trees already written and searches the batches
  that are not complete again; the seed of a batch depends only on (seed, batch), so the
  redone batch produces the trees an uninterrupted run would have. Output `trees`.
- `clone`: procedure cloning of `clone.trees` into ASTRO and Direct SFT records
  (`jaxreason.search.cloning.curate`), outputs `astro`, `direct`; train on them with
  `data.task = None` (the record's completion is the target) and `data.loss_on = "all"`.
"""

from __future__ import annotations

import codecs
import json
import logging
import os
import random
import shutil
from typing import Any

from jaxreason.train.data_stages import (_finish, _is_writer, _plain, _sync, finished,
                                         prompt_format, write_json, write_jsonl)
from jaxreason.train.errors import ConfigError

log = logging.getLogger(__name__)


def _delimiters(value: str) -> tuple[str, ...]:
    """`search.delimiter`: stop strings separated by `|`; backslash escapes (`\\n`) work."""
    parts = [codecs.decode(p, "unicode_escape") if "\\" in p else p
             for p in (value or "").split("|")]
    return tuple(p for p in parts if p)


def _task(config: Any, name_key: str, reward: str | None = None) -> Any:
    from jaxreason import tasks

    name = config.search.task or config.data.task
    if not name:
        raise ConfigError(f"{name_key}: set the task that formats prompts and grades (or "
                          f"data.task)")
    try:
        return tasks.get(name, reward=reward) if reward else tasks.get(name)
    except (KeyError, ValueError) as e:
        raise ConfigError(f"{name_key}: {e.args[0]}") from None


def _train_records(config: Any, task: Any) -> list[dict[str, Any]]:
    if config.data.train:
        if not os.path.exists(config.data.train):
            raise ConfigError(f"data.train: {config.data.train!r} does not exist")
        return task.load_records(config.data.train)
    if config.data.generator:
        from jaxreason.train import build

        return build.generated_records(config)[0]
    raise ConfigError("data.train: the search stage searches training problems: set data.train "
                      "(a records file) or data.generator")


# ----------------------------------------------------------------------------- step_data

def random_steps(nums: list[int], rng: random.Random) -> tuple[list[str], str]:
    """A random legal Countdown step sequence (non-negative integer results, exact division)
    using every number once: (step lines, expression)."""
    from jaxreason.tasks.countdown_solver import _school_combinations

    items = [(int(n), str(int(n))) for n in nums]
    lines = []
    while len(items) > 1:
        i, j = rng.sample(range(len(items)), 2)
        (a, ea), (b, eb) = items[i], items[j]
        result, left, op, right = rng.choice(_school_combinations(a, b))
        el, er = (ea, eb) if left == a else (eb, ea)
        lines.append(f"{left} {op} {right} = {result}")
        expr = f"({el} {op} {er})"
        items = [x for k, x in enumerate(items) if k not in (i, j)] + [(result, expr)]
    expression = items[0][1]
    if expression.startswith("(") and expression.endswith(")"):
        expression = expression[1:-1]
    return lines, expression


def step_completion(lines: list[str], expression: str) -> str:
    return "\n".join(lines + [f"<answer> {expression} </answer>"])


def step_data(config: Any, workdir: str) -> dict[str, Any]:
    """Write `train.jsonl`, `held_out.jsonl`, `warmup.jsonl` and `tokenizer/`."""
    done = finished(workdir)
    if done is not None:
        return done
    if config.data.generator != "countdown":
        raise ConfigError("data.generator: the step_data stage makes Countdown step data; set "
                          "data.generator = 'countdown'")
    from jaxreason import tasks
    from jaxreason.search.cloning import Phrases, describe_step
    from jaxreason.tasks.countdown_solver import solve
    from jaxreason.tokenizer import train_bpe_tokenizer
    from jaxreason.train import build

    task = tasks.get("countdown")
    train, held_out = build.generated_records(config)
    rng = random.Random(config.seed)
    share = float(config.step_data.random_share)
    n_warm = int(config.step_data.num_warmup) or len(train)
    warm = []
    for record in train[:n_warm]:
        if rng.random() < share:
            lines, expression = random_steps(record["nums"], rng)
        else:
            solution = solve([int(x) for x in record["nums"]], int(record["target"]))
            lines, expression = list(solution.steps), solution.expression
        warm.append({"prompt": task.prompt(record, chat=bool(config.data.chat)),
                     "completion": step_completion(lines, expression)})
    os.makedirs(workdir, exist_ok=True)
    outputs = {name: os.path.join(workdir, f"{name}.jsonl")
               for name in ("train", "held_out", "warmup")}
    outputs["tokenizer"] = os.path.join(workdir, "tokenizer")
    if _is_writer():
        write_jsonl(outputs["train"], train)
        write_jsonl(outputs["held_out"], held_out)
        write_jsonl(outputs["warmup"], warm)
        p = Phrases()
        phrase_texts = []
        for record in warm[:2000]:
            step = record["completion"].split("\n")[0]
            phrase_texts.append(f"{p.reflection} {p.negative} "
                                f"{p.backtrack.format(step=describe_step(step, task))}\n"
                                f"{p.restart}\n{p.reflection} {p.positive}")
        texts = ([task.question(r) for r in train[:5000]] + [w["completion"] for w in warm]
                 + phrase_texts)
        tokenizer = train_bpe_tokenizer(texts, int(config.tokenizer.train_vocab_size) or 1024)
        if os.path.exists(outputs["tokenizer"]):
            shutil.rmtree(outputs["tokenizer"])
        tokenizer.save_pretrained(outputs["tokenizer"])
    return _finish(workdir, {"status": "completed", "outputs": outputs,
                             "num_records": {"train": len(train), "held_out": len(held_out),
                                             "warmup": len(warm)}})


step_data.outputs = ("train", "held_out", "warmup", "tokenizer")  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- search

def mcts_settings(config: Any) -> Any:
    from jaxreason.search.mcts import MCTSSettings

    s = config.search
    try:
        return MCTSSettings(k=int(s.k), rollouts=int(s.rollouts), iterations=int(s.iterations),
                            max_depth=int(s.max_depth), c_puct=float(s.c_puct),
                            delimiter=_delimiters(s.delimiter),
                            max_step_tokens=int(s.max_step_tokens),
                            max_rollout_tokens=int(s.max_rollout_tokens),
                            temperature=float(s.temperature), top_p=float(s.top_p),
                            seed=int(config.seed), grading_workers=s.grading_workers,
                            grading_timeout_s=float(s.grading_timeout_s),
                            max_leaves_per_call=int(s.max_leaves_per_call))
    except ValueError as e:
        raise ConfigError(f"search: {e}") from None


def _good_trees(path: str) -> dict[Any, dict[str, Any]]:
    """Trees already in a process file; a torn last line (a kill mid-write) is cut off."""
    from jaxreason.search.trees import TreeFileError, validate_tree

    out: dict[Any, dict[str, Any]] = {}
    if not os.path.exists(path):
        return out
    good_bytes = 0
    with open(path, "rb") as f:
        data = f.read()
    for raw in data.splitlines(keepends=True):
        try:
            if not raw.endswith(b"\n"):
                raise ValueError("torn line")
            tree = validate_tree(json.loads(raw), path)
        except (ValueError, TreeFileError):
            break
        out[tree["id"]] = tree
        good_bytes += len(raw)
    if good_bytes < len(data):
        log.warning("search: cutting a torn tree line off %s", path)
        with open(path, "r+b") as f:
            f.truncate(good_bytes)
    return out


def search(config: Any, workdir: str) -> dict[str, Any]:
    """Step-level MCTS on the training problems; writes `trees.jsonl` (see the module
    docstring)."""
    done = finished(workdir)
    if done is not None:
        return done
    import jax

    from jaxreason import parallel
    from jaxreason.model.model import load_pretrained
    from jaxreason.prompting import prompt_token_ids, record_prompt
    from jaxreason.sampling import Sampler
    from jaxreason.search.mcts import SearchStats, Tree, search_trees, tree_stats
    from jaxreason.search.trees import append_tree
    from jaxreason.tokenizer import load_tokenizer
    from jaxreason.train import build

    s = config.search
    settings = mcts_settings(config)
    if int(s.batch_size) < 1:
        raise ConfigError(f"search.batch_size: must be >= 1, got {s.batch_size}")
    if not config.model.path or not os.path.isdir(config.model.path):
        raise ConfigError(f"model.path: the search stage searches with a model: run it after a "
                          f"model stage, or set model.path (got {config.model.path!r})")
    task = _task(config, "search.task", s.reward)
    build.setup_distributed(config)
    tokenizer_dir = config.tokenizer.path or config.model.path
    tokenizer = load_tokenizer(tokenizer_dir)
    fmt = prompt_format(config)
    records = _train_records(config, task)
    n = int(s.num_problems)
    records = records[:n] if n > 0 else records
    prompts = [prompt_token_ids(record_prompt(r, task, fmt), tokenizer, fmt) for r in records]

    os.makedirs(workdir, exist_ok=True)
    process, processes = jax.process_index(), jax.process_count()
    mine_file = os.path.join(workdir, f"trees.p{process:03d}.jsonl")
    fingerprint = {"search": s.to_dict(), "model": config.model.path, "seed": config.seed,
                   "data": [config.data.train, config.data.generator, config.data.chat],
                   "num_problems": len(records), "processes": processes}
    fingerprint_file = os.path.join(workdir, f"settings.p{process:03d}.json")
    if os.path.exists(fingerprint_file):
        with open(fingerprint_file) as f:
            if json.load(f) != json.loads(json.dumps(fingerprint, default=_plain)):
                log.warning("search: settings changed since the last attempt; dropping %s",
                            mine_file)
                if os.path.exists(mine_file):
                    os.remove(mine_file)
    write_json(fingerprint_file, fingerprint)
    written = _good_trees(mine_file)

    size = int(s.batch_size)
    batches = [list(range(i, min(i + size, len(records)))) for i in range(0, len(records), size)]
    mine = [b for b in range(len(batches)) if b % processes == process]
    todo = [b for b in mine if any(i not in written for i in batches[b])]
    if len(todo) < len(mine):
        log.info("search: resuming, %d of %d batches done", len(mine) - len(todo), len(mine))
    stats = SearchStats()
    sampler = None
    for b in todo:
        if sampler is None:
            mesh = parallel.make_mesh(config.mesh.data, config.mesh.fsdp, config.mesh.tensor,
                                      devices=jax.local_devices())
            model = load_pretrained(config.model.path, dtype=config.model.dtype,
                                    param_dtype=config.model.param_dtype, mesh=mesh)
            # few batch shapes (powers of 4): every new shape is a compile
            most = size * settings.k
            buckets = sorted({4 ** i for i in range(12) if 4 ** i < most} | {most})
            sampler = Sampler(model, tokenizer, batch_buckets=buckets,
                              max_kv_cache_bytes=config.sampling.max_kv_cache_bytes)
        trees = [Tree(id=i, record=records[i], prompt=list(prompts[i])) for i in batches[b]]

        def on_finish(tree: Tree) -> None:
            if tree.id not in written:  # a redone batch: the same tree, already on file
                data = tree.to_dict()
                append_tree(mine_file, data)
                written[tree.id] = data

        stats.add(search_trees(sampler, task, trees, settings, batch_id=b,
                               on_finish=on_finish))
        log.info("search: batch %d (%d problems) done", b, len(trees))
        print(f"[{os.path.basename(workdir)}] batch {b + 1}/{len(batches)}: "
              f"{sum(t.nodes[0].visits for t in trees)} visits, "
              f"{stats.expansions} expansions so far", flush=True)
    _sync(f"search done: {workdir}")
    outputs = {"trees": os.path.join(workdir, "trees.jsonl")}
    all_trees: dict[Any, dict[str, Any]] = {}
    for p in range(processes):
        all_trees.update(_good_trees(os.path.join(workdir, f"trees.p{p:03d}.jsonl")))
    ordered = [all_trees[i] for i in sorted(all_trees)]
    figures = tree_stats(ordered)
    if _is_writer():
        from jaxreason.search.trees import write_trees

        write_trees(outputs["trees"], ordered)
    summary = {"status": "completed", "outputs": outputs, **figures,
               "timing_s": {"expand": stats.expand_s, "rollout": stats.rollout_s,
                            "grade": stats.grade_s, "host": stats.host_s},
               "expansions": stats.expansions, "rollouts": stats.rollouts}
    print(f"[{os.path.basename(workdir)}] {figures['num_trees']} trees: valid "
          f"{figures['valid_tree_rate']:.3f}, mean nodes {figures['mean_nodes']:.1f}, Q correct "
          f"path {figures['q_correct_path']} vs siblings {figures['q_siblings']}", flush=True)
    return _finish(workdir, summary)


search.outputs = ("trees",)  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- clone

def clone(config: Any, workdir: str) -> dict[str, Any]:
    """ASTRO and Direct SFT records of `clone.trees`."""
    done = finished(workdir)
    if done is not None:
        return done
    from jaxreason.search.cloning import CurationSettings, curate
    from jaxreason.search.mcts import tree_stats
    from jaxreason.search.trees import read_trees

    c = config.clone
    if not c.trees or not os.path.exists(c.trees):
        raise ConfigError(f"clone.trees: a tree file is needed (e.g. 'stage:search.trees'), "
                          f"got {c.trees!r}")
    try:
        ks = tuple(int(k) for k in str(c.ks).split(",") if k.strip())
        settings = CurationSettings(num_direct=int(c.num_direct), num_search=int(c.num_search),
                                    ks=ks, positive_q=(None if c.positive_q is None
                                                       else float(c.positive_q)),
                                    seed=int(config.seed))
    except ValueError as e:
        raise ConfigError(f"clone: {e}") from None
    if not ks or min(ks) < 0:
        raise ConfigError(f"clone.ks: comma-separated k >= 0, got {c.ks!r}")
    task = _task(config, "search.task")
    trees = read_trees(c.trees)
    chat = bool(config.data.chat)
    astro, direct, counts = curate(trees, task, settings,
                                   prompt_fn=lambda record: task.prompt(record, chat=chat))
    if not astro:
        raise ConfigError(f"clone.trees: none of the {len(trees)} trees in {c.trees} has a "
                          f"correct terminal; search more (search.iterations, search.k) or "
                          f"start from a stronger policy")
    os.makedirs(workdir, exist_ok=True)
    outputs = {"astro": os.path.join(workdir, "astro.jsonl"),
               "direct": os.path.join(workdir, "direct.jsonl")}
    if _is_writer():
        write_jsonl(outputs["astro"], astro)
        write_jsonl(outputs["direct"], direct)
    summary = {"status": "completed", "outputs": outputs, **counts,
               "trees_stats": tree_stats(trees)}
    print(f"[{os.path.basename(workdir)}] {counts['records_per_arm']} records per arm from "
          f"{len(trees) - counts['skipped_no_correct']} valid trees (mean backtracks "
          f"{counts['mean_backtracks']:.2f})", flush=True)
    return _finish(workdir, summary)


clone.outputs = ("astro", "direct")  # type: ignore[attr-defined]
