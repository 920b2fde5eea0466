"""The Iterative RPO pairing rule: distinct winners x distinct losers, at most K per prompt,
drawn without replacement; unparseable answers are losers; prompts without a pair counted."""

import pytest

from jaxreason.train.errors import ConfigError
from jaxreason.train.preference_data import build_pairs, iteration_temperature


def _line(prompt, text, correct, format_ok=True, finish="stop"):
    return {"prompt_index": prompt, "prompt": f"Q{prompt}", "completion": text,
            "correct": correct, "format_ok": format_ok, "finish_reason": finish}


LINES = (
    # prompt 0: winners a, b (a twice), losers x, y, z (x twice) -> 2 x 3 = 6 combinations
    [_line(0, "a", True), _line(0, "a", True), _line(0, "b", True), _line(0, "x", False),
     _line(0, "x", False), _line(0, "y", False), _line(0, "z", False, finish="length")]
    # prompt 1: all correct -> no pair
    + [_line(1, "c", True), _line(1, "d", True)]
    # prompt 2: all wrong -> no pair
    + [_line(2, "e", False), _line(2, "f", False)]
    # prompt 3: the right number without the format is a loser
    + [_line(3, "g", True), _line(3, "h", True, format_ok=False), _line(3, "", False),
       _line(3, "  ", False)])


def test_pairs_are_distinct_capped_and_without_replacement():
    pairs, stats = build_pairs(LINES, k=4, seed=0, iteration=1)
    first = [(p["chosen"], p["rejected"]) for p in pairs if p["prompt_index"] == 0]
    assert len(first) == 4 == len(set(first))
    assert all(c in "ab" and r in "xyz" for c, r in first)
    assert [(p["chosen"], p["rejected"]) for p in pairs if p["prompt_index"] == 3] == [("g", "h")]
    assert stats["num_pairs"] == 5 and stats["prompts_with_pairs"] == 2
    assert stats["all_correct_prompts"] == 1 and stats["all_wrong_prompts"] == 1
    assert stats["no_pair_share"] == 0.5
    assert stats["empty_completions"] == 2  # never a response of a pair
    truncated = [p for p in pairs if p["rejected"] == "z"]
    assert all(p["rejected_truncated"] and not p["chosen_truncated"] for p in truncated)
    # k above the number of combinations takes all of them, each once
    every, _ = build_pairs(LINES, k=100, seed=0, iteration=1)
    assert sorted((p["chosen"], p["rejected"]) for p in every if p["prompt_index"] == 0) == [
        (w, l) for w in "ab" for l in "xyz"]
    # the lenient grade counts when the format is not required
    lenient, stats = build_pairs(LINES, k=4, seed=0, iteration=1, require_format=False)
    assert stats["all_correct_prompts"] == 2


def test_draws_depend_on_seed_and_iteration_only():
    a, _ = build_pairs(LINES, k=3, seed=0, iteration=1)
    assert a == build_pairs(LINES, k=3, seed=0, iteration=1)[0]
    others = [build_pairs(LINES, k=3, seed=s, iteration=i)[0] for s, i in ((1, 1), (0, 2), (5, 3))]
    assert any(o != a for o in others)


def test_temperature_schedule_per_iteration():
    assert iteration_temperature("0.8,0.8,1.3", 1) == 0.8
    assert iteration_temperature("0.8,0.8,1.3", 3) == 1.3
    assert iteration_temperature("0.8,0.8,1.3", 7) == 1.3  # the last one repeats
    assert iteration_temperature("0.7", 0) == 0.7
    with pytest.raises(ConfigError, match="pairs.temperatures"):
        iteration_temperature("hot", 1)
