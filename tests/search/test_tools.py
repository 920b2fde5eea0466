"""The warm-up step generator, launch/show_tree.py, and the ASTRO recipes' stage wiring."""

import importlib
import json
import pathlib
import random
import subprocess
import sys
from fractions import Fraction

import pytest

from jaxreason import tasks
from jaxreason.search import linearize, render_trace, write_trees
from jaxreason.search.stages import _delimiters, random_steps, step_completion
from jaxreason.tasks.countdown import evaluate
from hand_trees import countdown_tree

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_random_steps_are_legal_and_use_every_number():
    rng = random.Random(0)
    for _ in range(200):
        nums = [rng.randint(1, 20) for _ in range(rng.choice([3, 4]))]
        lines, expression = random_steps(nums, rng)
        assert len(lines) == len(nums) - 1
        for line in lines:
            left, result = line.split(" = ")
            value, _ = evaluate(left)
            assert value == Fraction(int(result)) and int(result) >= 0
        value, literals = evaluate(expression)
        assert value == int(lines[-1].split(" = ")[1])
        assert sorted(int(x) for x in literals) == sorted(nums)
        assert step_completion(lines, expression).endswith(f"<answer> {expression} </answer>")


def test_delimiters_accept_escapes():
    assert _delimiters("\\n") == ("\n",) and _delimiters("\n\n| =") == ("\n\n", " =")


def test_show_tree_writes_html_and_dot(tmp_path):
    tree = countdown_tree()
    trees = tmp_path / "trees.jsonl"
    write_trees(str(trees), [tree, {**tree, "id": 8}])
    task = tasks.get("countdown")
    records = tmp_path / "astro.jsonl"
    records.write_text(json.dumps({"record": tree["record"], "nodes": [1, 2], "completion":
                                   render_trace(tree, linearize(tree, 2, 0), task)}) + "\n")
    script = str(ROOT / "launch" / "show_tree.py")
    for args, expect in [([str(trees), "--index", "1", "--out", str(tmp_path / "t.html")],
                          "13 nodes"),
                         ([str(records), "--out", str(tmp_path / "c.dot")], "edges")]:
        out = subprocess.run([sys.executable, script, *args], capture_output=True, text=True,
                             check=True).stdout
        assert expect in out
    assert "<svg" in (tmp_path / "t.html").read_text()
    assert "tree 8" in (tmp_path / "t.html").read_text()
    assert (tmp_path / "c.dot").read_text().count("style=dashed") == 2
    bad = subprocess.run([sys.executable, script, str(trees), "--index", "5", "--out", "x.html"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "out of range" in bad.stderr


@pytest.mark.parametrize("name", ["astro_countdown_tiny", "astro_llama3_70b_math"])
def test_astro_recipes_wire_their_stages(name):
    from jaxreason.train import pipeline

    config = importlib.import_module(f"configs.{name}").get_config()
    runs = pipeline.parse_stages(config.pipeline.stages)
    pipeline.validate(config, runs)
    assert {"search", "clone", "sft_astro", "sft_direct", "grpo_astro",
            "grpo_direct"} <= {r.id for r in runs}
    for arm in ("astro", "direct"):
        sft = config.stages[f"sft_{arm}"]
        assert sft.data.train == f"stage:clone.{arm}" and sft.data.loss_on == "all"
        assert config.stages[f"grpo_{arm}"].grpo.group_size == 4
        assert config.stages[f"grpo_{arm}"].grpo.reward == "astro"
    # both arms start from the same model and see the same number of passes
    assert config.stages.sft_astro.model.path == config.stages.sft_direct.model.path
    assert config.stages.sft_astro.data.num_epochs == config.stages.sft_direct.data.num_epochs
