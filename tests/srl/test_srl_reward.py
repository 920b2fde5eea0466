"""The SRL reward: difflib similarity of the action after the last </think>, -1 on format
errors, the think text never counted, exact-match `correct`, safe on any input."""

from __future__ import annotations

import difflib
import random
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxreason import tasks
from jaxreason.advantages import informative_groups
from jaxreason.tasks.srl import similarity, split_action

RECORD = {"problem": "Using the numbers [12, 3, 2], make 30.",
          "previous_steps": ["12 + 3 = 15"], "target_step": "15 * 2 = 30"}


def grade(completion, task=None, record=RECORD):
    return (task or tasks.get("srl")).grade(record, completion)


def test_registered():
    assert "srl" in tasks.names()
    assert isinstance(tasks.get("srl"), tasks.SRLTask)


def test_identical_action_is_one():
    assert similarity("12+3=15", "12+3=15") == 1.0
    g = grade("<think>multiply by 2</think>\n15 * 2 = 30\n")
    assert (g.reward, g.correct, g.format_ok, g.extracted) == (1.0, True, True, "15 * 2 = 30")


@pytest.mark.parametrize("completion", [
    "15 * 2 = 30",                                      # no </think>
    "<think>a</think> 15 * 2 = 30 <think>b</think> 15 * 2 = 30",  # two think blocks
    "<think>a</think><think>b</think>15 * 2 = 30",      # two think blocks, adjacent
    "<think>a <think> b</think> 15 * 2 = 30",           # two openings
    "<think>a</think>",                                 # empty action
    "<think>a</think>  \n\t ",                          # whitespace-only action
    "</think> 15 * 2 = 30 <think>",                     # closed before opened
    "think: 15 * 2 = 30",                               # no tags
    "",
])
def test_format_errors_are_minus_one(completion):
    g = grade(completion)
    assert g.reward == -1.0 and not g.format_ok and not g.correct


def test_think_text_does_not_change_the_reward():
    action = "15 + 2 = 17"
    base = grade(f"<think></think>{action}").reward
    assert 0 < base < 1
    for think in ["15 * 2 = 30", "x" * 3000, "15 * 2 = 30 " * 50, "\n\n", "answer: 15 * 2 = 30"]:
        g = grade(f"<think>{think}</think> {action}")
        assert g.reward == base and g.extracted == action


def test_correct_is_exact_match_of_the_stripped_action():
    assert grade("<think>.</think>  15 * 2 = 30  ").correct
    assert not grade("<think>.</think>15*2=30").correct
    assert grade("<think>.</think>15*2=30").reward == pytest.approx(
        difflib.SequenceMatcher(None, "15*2=30", "15 * 2 = 30").ratio())


def _random_text(rng: random.Random, alphabet: str, max_len: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, max_len)))


def test_equals_difflib_in_both_orders_and_autojunk_settings():
    rng = random.Random(0)
    differs_by_order = differs_by_autojunk = False
    for i in range(300):
        # short and long (>= 200 chars: autojunk's threshold) strings over small alphabets
        max_len = 40 if i % 2 else 400
        action = _random_text(rng, "ab c=+1", max_len).strip() or "a"
        target = _random_text(rng, "ab c=+12", max_len).strip() or "b"
        record = {**RECORD, "target_step": target}
        for order in ("action_first", "target_first"):
            for autojunk in (True, False):
                task = tasks.get("srl", order=order, autojunk=autojunk)
                a, b = (action, target) if order == "action_first" else (target, action)
                want = difflib.SequenceMatcher(None, a, b, autojunk=autojunk).ratio()
                assert grade(f"<think>t</think>{action}", task, record).reward == want
        swapped = difflib.SequenceMatcher(None, target, action).ratio()
        differs_by_order |= swapped != difflib.SequenceMatcher(None, action, target).ratio()
        differs_by_autojunk |= (difflib.SequenceMatcher(None, action, target).ratio() !=
                                difflib.SequenceMatcher(None, action, target,
                                                        autojunk=False).ratio())
    # the options matter on these inputs, so the test distinguishes them
    assert differs_by_order and differs_by_autojunk


def test_std_filter_drops_all_equal_groups():
    t = tasks.get("srl")
    groups = [
        ["no think"] * 8,                                        # all -1
        ["<think>x</think>15 + 2 = 17"] * 8,                     # all the same similarity
        ["<think>x</think>15 * 2 = 30"] * 7 + ["no think"],      # informative
        ["<think>x</think>15 + 2 = 17"] * 4 + ["<think>x</think>15 * 2 = 30"] * 4,
    ]
    rewards = np.array([[t.grade(RECORD, c).reward for c in g] for g in groups])
    keep = informative_groups(rewards, min_std=0.01)
    assert keep.tolist() == [False, False, True, True]
    # population std (divide by G): a half/half split 0.016 apart has std 0.008 (the sample
    # std, dividing by G - 1, would be 0.00855), 0.024 apart 0.012
    close = np.array([[0.5] * 4 + [0.516] * 4, [0.5] * 4 + [0.524] * 4])
    assert informative_groups(close, min_std=0.01).tolist() == [False, True]


def test_prompt_plain_and_chat():
    t = tasks.get("srl")
    record = {**RECORD, "previous_steps": ["12 + 3 = 15", "15 - 1 = 14"]}
    plain = t.prompt(record)
    assert "1. 12 + 3 = 15\n2. 15 - 1 = 14" in plain and "<think>" in plain
    assert RECORD["target_step"] not in plain
    chat = t.prompt(record, chat=True)
    assert [m["role"] for m in chat] == ["system", "user"]
    assert "2. 15 - 1 = 14" in chat[1]["content"] and "Write step 3." in chat[1]["content"]
    first = t.prompt({**RECORD, "previous_steps": []}, chat=True)[1]["content"]
    assert "none yet" in first and "Write step 1." in first
    assert t.grade(RECORD, t.reference_completion(RECORD)).reward == 1.0
    prefilled = tasks.get("srl", prefill_think=True)
    assert prefilled.prompt(RECORD).endswith("<think>")
    assert prefilled.grade(RECORD, "hm</think>15 * 2 = 30").reward == 1.0
    assert prefilled.grade(RECORD, "<think>hm</think>15 * 2 = 30").reward == -1.0
    assert prefilled.grade(RECORD, prefilled.reference_completion(RECORD)).reward == 1.0


def test_split_action():
    assert split_action("<think>a</think> b </think>") == (None, "format_error: 1 <think> and 2 </think> tags")
    assert split_action("<think>a\n</think>\n b ") == ("b", "ok")


def test_long_inputs_are_bounded():
    t = tasks.get("srl")
    record = {**RECORD, "target_step": "a = " + "1 + " * 200}
    start = time.perf_counter()
    assert t.grade(record, "<think>x</think>" + "1 + " * 2000).reward == -1.0  # > max_action_chars
    assert t.grade(record, "<think>" + "x" * 300_000 + "</think>1").reward == -1.0  # too long
    g = t.grade(record, "<think>x</think>" + "1 + " * 1000)
    assert 0 <= g.reward <= 1
    assert time.perf_counter() - start < 5


@settings(max_examples=300, deadline=None)
@given(completion=st.text(alphabet=st.sampled_from(list("<>/thinkab =+\n")) | st.characters(),
                          max_size=300),
       target=st.text(max_size=60), previous=st.lists(st.text(max_size=20), max_size=3))
def test_grader_never_raises(completion, target, previous):
    t = tasks.get("srl")
    record = {"problem": "p", "previous_steps": previous, "target_step": target}
    g = t.grade(record, completion)
    assert g.reward == -1.0 or 0.0 <= g.reward <= 1.0
    assert g.format_ok == (g.reward != -1.0 or False) or not g.format_ok
    if g.format_ok:
        action = completion[completion.rfind("</think>") + len("</think>"):].strip()
        assert g.reward == difflib.SequenceMatcher(None, action, target.strip()).ratio()
    assert isinstance(t.prompt(record), str)


@pytest.mark.parametrize("completion", [None, 3, b"<think></think>x", ["x"]])
def test_non_string_completions(completion):
    g = tasks.get("srl").grade(RECORD, completion)
    assert g.reward == -1.0 and not g.format_ok


def test_bad_records_do_not_raise():
    t = tasks.get("srl")
    assert t.grade({}, "<think>x</think>y").reward == -1.0
    assert t.grade({"target_step": None}, "<think>x</think>None").reward == 1.0
