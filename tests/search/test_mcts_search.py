"""The batched search: a scripted policy (exact control of steps, one call per phase and
iteration), then the `search` stage with a real tiny model (valid tree files; a killed and
restarted stage writes the same trees)."""

import json
import os
import random
import zlib

import numpy as np
import pytest
from ml_collections import ConfigDict

from configs import base
from jaxreason import tasks
from jaxreason.sampling.params import (FINISH_STOP_STRING, FINISH_STOP_TOKEN, GeneratedBatch)
from jaxreason.search import MCTSSettings, Tree, read_trees, search_trees, tree_stats
from jaxreason.search.trees import validate_tree

TASK = tasks.get("countdown", reward="astro")
RECORD = {"nums": [3, 5, 2], "target": 16}
# step options by the last line written: a tiny Countdown world with one correct route
OPTIONS = {
    "": ["3 + 5 = 8", "5 - 3 = 2", "<answer> 3 * 5 </answer>"],
    "3 + 5 = 8": ["8 * 2 = 16", "8 - 2 = 6"],
    "5 - 3 = 2": ["2 * 2 = 4"],
    "8 * 2 = 16": ["<answer> (3 + 5) * 2 </answer>", "<answer> 3 + 5 + 2 </answer>"],
    "8 - 2 = 6": ["<answer> (3 + 5) - 2 </answer>"],
    "2 * 2 = 4": ["<answer> (5 - 3) * 2 </answer>"],
}


@pytest.fixture(scope="module")
def tokenizer():
    from jaxreason.tokenizer import train_bpe_tokenizer

    lines = [o for opts in OPTIONS.values() for o in opts]
    return train_bpe_tokenizer([TASK.prompt(RECORD) + "\n".join(lines)] * 20, 400)


class ScriptedSampler:
    """A policy that writes the steps of OPTIONS: a step call samples one option of the last
    line (seeded by call seed, prompt index and sample index); a rollout writes options to an
    answer."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.calls = []

    def _completion(self, prefix):
        text = self.tokenizer.decode(prefix, skip_special_tokens=True)
        return text.rsplit("<think>", 1)[-1]

    def generate_ids(self, prompts, sampling, params=None):
        self.calls.append(("step" if sampling.stop else "rollout", len(prompts)))
        rows = []
        for p, prefix in enumerate(prompts):
            lines = [x for x in self._completion(prefix).split("\n") if x]
            for j in range(sampling.n):
                rng = random.Random(zlib.crc32(f"{sampling.seed}:{p}:{j}".encode()))
                last = lines[-1] if lines else ""
                if sampling.stop:
                    pick = rng.randrange(len(OPTIONS[last]))
                    text = OPTIONS[last][pick] + "\n"
                    rows.append((self.tokenizer.encode(text), -0.5 * (pick + 1),
                                 FINISH_STOP_STRING, 0, p, j))
                else:
                    out = []
                    while last in OPTIONS:
                        last = rng.choice(OPTIONS[last])
                        out.append(last)
                    rows.append((self.tokenizer.encode("\n".join(out)), -1.0, FINISH_STOP_TOKEN,
                                 -1, p, j))
        width = sampling.max_new_tokens
        n = len(rows)
        tokens = np.zeros((n, width), np.int32)
        raw = np.zeros((n, width), np.float32)
        for r, (ids, lp, *_rest) in enumerate(rows):
            assert len(ids) <= width
            tokens[r, :len(ids)] = ids
            raw[r, :len(ids)] = lp
        col = lambda i: np.array([row[i] for row in rows], np.int32)  # noqa: E731
        return GeneratedBatch(tokens=tokens, logprobs=raw.copy(), raw_logprobs=raw,
                              lengths=np.array([len(r[0]) for r in rows], np.int32),
                              finish_codes=col(2), stop_index=col(3), prompt_index=col(4),
                              sample_index=col(5))


def _trees(tokenizer, n=3):
    prompt = tokenizer.encode(TASK.prompt(RECORD))
    return [Tree(id=i, record=RECORD, prompt=list(prompt)) for i in range(n)]


def test_one_call_per_phase_per_iteration_and_the_tree_semantics(tokenizer):
    sampler = ScriptedSampler(tokenizer)
    trees = _trees(tokenizer, 5)
    finished = []
    settings = MCTSSettings(k=4, rollouts=4, iterations=6, max_depth=4, max_step_tokens=32,
                            max_rollout_tokens=64, seed=3)
    stats = search_trees(sampler, TASK, trees, settings, on_finish=finished.append)
    assert sorted(t.id for t in finished) == [0, 1, 2, 3, 4]
    # every iteration: one step call for all leaves of all trees, then one rollout call
    kinds = [k for k, _ in sampler.calls]
    assert kinds.count("step") == stats.expand_calls and stats.expand_calls <= 6
    assert all(a == "step" and b == "rollout" for a, b in zip(kinds[::2], kinds[1::2]))
    assert sampler.calls[0] == ("step", 5)  # the five roots in one call
    for tree in trees:
        data = tree.to_dict()
        validate_tree(data)
        by_parent = {}
        for node in tree.nodes[1:]:
            by_parent.setdefault(node.parent, []).append(node.text)
            if "<answer>" in node.text:
                assert node.terminal and node.answer is not None
                assert node.correct == (node.answer == "(3 + 5) * 2")
                assert node.rollout_reward == (1.0 if node.correct else -1.0)
            else:
                assert not node.terminal and -1.0 <= node.rollout_reward <= 1.0
        for texts in by_parent.values():
            assert len(texts) == len(set(texts))  # identical candidates merged
        siblings = [tree.nodes[c].prior for c in tree.nodes[0].children]
        assert np.isclose(sum(siblings), 1.0)
        # one selection per iteration; a tree stops early when every leaf is terminal
        assert tree.nodes[0].visits == tree.iterations <= 6
        assert tree.iterations == 6 or not tree.expandable()
    stats = tree_stats([t.to_dict() for t in trees])
    assert stats["valid_tree_rate"] >= 0.4
    assert stats["q_correct_path"] > stats["q_siblings"]


def test_the_same_seed_gives_the_same_trees_and_one_leaf_at_a_time_works(tokenizer):
    settings = MCTSSettings(k=3, rollouts=2, iterations=5, max_step_tokens=32,
                            max_rollout_tokens=64, seed=1)
    a, b = _trees(tokenizer), _trees(tokenizer)
    search_trees(ScriptedSampler(tokenizer), TASK, a, settings)
    search_trees(ScriptedSampler(tokenizer), TASK, b, settings)
    assert [t.to_dict() for t in a] == [t.to_dict() for t in b]
    one = ScriptedSampler(tokenizer)
    c = _trees(tokenizer)
    search_trees(one, TASK, c, MCTSSettings(**{**settings.__dict__, "max_leaves_per_call": 1}))
    assert max(n for _, n in one.calls if True) <= 3  # rollouts: one child's M at a time
    assert all(n == 1 for k, n in one.calls if k == "step")


# ----------------------------------------------------------------------------- the stage

COUNTDOWN = {"num_train": 12, "num_eval": 4, "num_numbers": (3, 3), "number_range": (1, 20),
             "target_range": (10, 40)}


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    from jaxreason.data import synthetic
    from jaxreason.model.config import preset_config
    from jaxreason.model.model import create_model, save_pretrained
    from jaxreason.tokenizer import train_bpe_tokenizer

    train, _ = synthetic.generate("countdown", COUNTDOWN, 0)
    tok = train_bpe_tokenizer([TASK.prompt(r) + TASK.reference_completion(r) for r in train]
                              * 4, 512)
    config = preset_config("llama-tiny", vocab_size=len(tok), hidden_size=32,
                           intermediate_size=64, num_layers=1, num_heads=2, num_kv_heads=1,
                           head_dim=16, max_position_embeddings=512,
                           bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                           pad_token_id=tok.pad_token_id)
    directory = tmp_path_factory.mktemp("tiny_search_model")
    save_pretrained(create_model(config, seed=0), directory)
    tok.save_pretrained(directory)
    return str(directory)


def read_trees_lenient(path):
    lines = path.read_text().split("\n")
    return [json.loads(line) for line in lines[:-1]]  # the torn last line has no newline


def search_config(model_dir):
    c = base.get_config()
    c.trainer = "search"
    c.seed = 4
    c.model.path = model_dir
    c.data.generator = "countdown"
    c.data.generator_options = ConfigDict(COUNTDOWN)
    c.data.task = "countdown"
    c.search.k = 3
    c.search.rollouts = 2
    c.search.iterations = 3
    c.search.max_depth = 3
    c.search.delimiter = " =|\n"  # a random model rarely writes a newline
    c.search.max_step_tokens = 6
    c.search.max_rollout_tokens = 8
    c.search.num_problems = 6
    c.search.batch_size = 2
    c.search.grading_workers = 0
    return c


def test_search_stage_writes_valid_trees_and_a_restart_gives_the_same(tmp_path, tiny_model_dir,
                                                                        monkeypatch):
    from jaxreason.search import stages

    full = stages.search(search_config(tiny_model_dir), str(tmp_path / "full"))
    trees = read_trees(full["outputs"]["trees"])
    assert [t["id"] for t in trees] == list(range(6))
    assert all(len(t["nodes"]) > 1 for t in trees)
    assert full["num_trees"] == 6 and full["expansions"] > 0

    # kill the stage after its fourth tree, leaving a torn line behind
    workdir = tmp_path / "killed"
    from jaxreason.search import trees as tree_module

    real_append, written = tree_module.append_tree, []

    def dying_append(path, tree):
        if len(written) == 3:
            with open(path, "a") as f:
                f.write(json.dumps(tree)[:50])  # torn
            raise KeyboardInterrupt("killed")
        written.append(tree["id"])
        real_append(path, tree)

    monkeypatch.setattr(tree_module, "append_tree", dying_append)
    with pytest.raises(KeyboardInterrupt):
        stages.search(search_config(tiny_model_dir), str(workdir))
    monkeypatch.undo()
    assert [t["id"] for t in read_trees_lenient(workdir / "trees.p000.jsonl")] == [0, 1, 2]
    assert not os.path.exists(workdir / "summary.json")
    again = stages.search(search_config(tiny_model_dir), str(workdir))
    assert read_trees(again["outputs"]["trees"]) == trees
    # the batch that was cut was searched again; the first one was kept
    assert again["expansions"] < full["expansions"]
    # finished: a third call only reads the summary
    assert stages.search(search_config(tiny_model_dir), str(workdir)) == again

    # two processes (simulated one after the other): each searches its own batches and
    # writes its own tree file; process 0 merges them into the same trees
    import jax

    from jaxreason.train import data_stages

    shared = tmp_path / "two_hosts"
    monkeypatch.setattr(stages, "_sync", lambda name: None)
    monkeypatch.setattr(data_stages, "_sync", lambda name: None)
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    for process in (1, 0):
        monkeypatch.setattr(jax, "process_index", lambda p=process: p)
        stages.search(search_config(tiny_model_dir), str(shared))
    ids = {p: [t["id"] for t in read_trees(str(shared / f"trees.p00{p}.jsonl"))] for p in (0, 1)}
    assert sorted(ids[0]) == [0, 1, 4, 5] and sorted(ids[1]) == [2, 3]
    assert read_trees(str(shared / "trees.jsonl")) == trees
