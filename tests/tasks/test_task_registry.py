"""Task registry, reward configuration, pickling, and the no-JAX rule of the tasks layer."""

from __future__ import annotations

import dataclasses
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from jaxreason import tasks
from jaxreason.tasks import Grade, RewardConfig, Task, Verdict, get, register

REPO = Path(__file__).resolve().parents[2]


def test_every_family_is_registered_by_name():
    assert tasks.names() == ["arc", "countdown", "gsm8k", "math", "srl"]
    for name in tasks.names():
        task = get(name)
        assert isinstance(task, Task) and task.name == name


def test_unknown_names_and_options_are_errors_that_list_the_choices():
    with pytest.raises(KeyError, match="registered tasks: \\['arc', 'countdown', 'gsm8k', 'math', 'srl'\\]"):
        get("mmlu")
    with pytest.raises(TypeError, match="no option\\(s\\) \\['lenient'\\]"):
        get("math", lenient=True)
    with pytest.raises(ValueError, match="unknown reward preset"):
        get("math", reward="big")


def test_reward_options_compose_presets_and_fields():
    assert get("math").reward == RewardConfig(1.0, 0.0, None)
    assert get("countdown").reward == RewardConfig.preset("tinyzero")
    assert get("gsm8k", reward="astro").reward.reward_incorrect == -1.0
    task = get("countdown", reward="astro", reward_format=0.0, max_completion_chars=100)
    assert (task.reward.reward_correct, task.reward.reward_incorrect, task.reward.reward_format) == (1.0, -1.0, 0.0)
    assert get("arc", reward={"reward_correct": 2.0}).reward.reward_correct == 2.0


def test_length_cap_gives_the_too_long_reward():
    task = get("gsm8k", max_completion_chars=50, reward_too_long=-0.5)
    grade = task.grade({"question": "q", "answer": "#### 1"}, "#### 1" + " " * 100)
    assert (grade.reward, grade.correct, grade.reason) == (-0.5, False, "too_long")
    default = get("gsm8k", max_completion_chars=50, reward="astro")
    assert default.grade({"question": "q", "answer": "#### 1"}, "x" * 51).reward == -1.0


def test_tasks_pickle_and_compare_by_value():
    for name in tasks.names():
        task = get(name, reward="astro")
        assert pickle.loads(pickle.dumps(task)) == task
        assert hash(task) == hash(get(name, reward="astro"))


def test_a_grader_bug_becomes_a_grade_not_an_exception():
    @dataclasses.dataclass(frozen=True)
    class Broken(Task):
        reward: RewardConfig = dataclasses.field(default_factory=RewardConfig)
        name = "broken"

        def prompt(self, record, *, chat=False):
            return ""

        def gold_answer(self, record):
            return None

        def extract(self, completion):
            return None

        def _check(self, record, completion):
            raise ZeroDivisionError("bug")

    grade = Broken().grade({}, "x")
    assert grade == Grade(0.0, False, None, "grader_error: ZeroDivisionError: bug", False)
    assert RewardConfig().reward_for(Verdict(True, "1", "exact_match", True)) == 1.0


def test_register_refuses_a_second_class_under_a_taken_name():
    with pytest.raises(ValueError, match="already registered"):
        register("math")(type("Other", (), {}))


def test_load_records_checks_the_family_fields(tmp_path):
    path = tmp_path / "gsm.jsonl"
    path.write_text(json.dumps({"question": "q", "answer": "#### 1"}) + "\n" + json.dumps({"question": "q"}) + "\n")
    with pytest.raises(ValueError, match=r"gsm.jsonl:2: record has no field 'answer'"):
        get("gsm8k").load_records(str(path))


def test_importing_tasks_does_not_import_jax_or_grain():
    code = (
        "import sys, jaxreason.tasks, jaxreason.data.readers; "
        "print(sorted(m for m in ('jax', 'grain', 'sympy') if m in sys.modules))"
    )
    output = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert output.stdout.strip() == "[]"
