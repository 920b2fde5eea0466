"""Behavior classifier: agreement with hand-labelled traces, the API, robustness and linear time."""

from __future__ import annotations

import math
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxreason import behaviors
from labelled_traces import DEVELOPMENT, HELD_OUT, KEYS, TRACES

# Floors: measured values (docs/behaviors.md) minus a margin. The classifier and the
# development traces share an author, so those numbers are optimistic; the held-out traces
# (written after the rules were frozen) are the honest estimate and get a pooled floor.
FLOOR_ALL = 0.7
FLOOR_HELD_OUT_POOLED = 0.75


def _scores(traces, domain):
    tp = {k: 0 for k in KEYS}
    predicted, expected = dict(tp), dict(tp)
    for trace in traces:
        if trace["domain"] != domain:
            continue
        got = behaviors.count(trace["text"], domain)
        for k in KEYS:
            tp[k] += min(got[k], trace["expected"][k])
            predicted[k] += got[k]
            expected[k] += trace["expected"][k]
    return tp, predicted, expected


def _ratio(a, b):
    return a / b if b else 1.0


def _report(name, traces):
    lines, table = [], {}
    for domain in behaviors.DOMAINS:
        tp, predicted, expected = _scores(traces, domain)
        for k in KEYS:
            p, r = _ratio(tp[k], predicted[k]), _ratio(tp[k], expected[k])
            table[domain, k] = (p, r, tp[k], predicted[k], expected[k])
            lines.append(f"{name:11s} {domain:9s} {k:17s} precision {p:.2f} ({tp[k]}/{predicted[k]})"
                         f"  recall {r:.2f} ({tp[k]}/{expected[k]})")
    print("\n" + "\n".join(lines))
    return table


def test_labelled_set_size():
    for domain in behaviors.DOMAINS:
        assert sum(t["domain"] == domain for t in TRACES) >= 20
    assert len({t["id"] for t in TRACES}) == len(TRACES)
    for trace in TRACES:
        assert set(trace["expected"]) == set(KEYS)


def test_precision_and_recall_per_behavior_and_domain():
    _report("development", DEVELOPMENT)
    _report("held-out", HELD_OUT)
    table = _report("all", TRACES)
    low = {key: value[:2] for key, value in table.items() if min(value[:2]) < FLOOR_ALL}
    assert not low, low


def test_held_out_pooled_precision_and_recall():
    tp = predicted = expected = 0
    for domain in behaviors.DOMAINS:
        a, b, c = _scores(HELD_OUT, domain)
        tp, predicted, expected = tp + sum(a.values()), predicted + sum(b.values()), expected + sum(c.values())
    print(f"\nheld-out pooled: precision {tp / predicted:.2f} recall {tp / expected:.2f}")
    assert tp / predicted >= FLOOR_HELD_OUT_POOLED and tp / expected >= FLOOR_HELD_OUT_POOLED


# --- rules on small cases -----------------------------------------------------------------


def test_countdown_mechanical_rules():
    count = behaviors.count
    # A new combination from the original numbers after an unused result is a backtrack.
    assert count("44 + 19 = 63, 63 - 35 = 28. 44 - 35 = 9, 9 * 19 = 171.", "countdown")["backtracking"] == 1
    # Building on the previous result, or combining two partial results later, is not.
    assert count("25 + 5 = 30. 9 - 6 = 3. 30 * 3 = 90.", "countdown")["backtracking"] == 0
    # Restating the found solution to check it is verification, not a new attempt.
    got = count("The target is 35. 70 - 46 = 24, 24 + 11 = 35. Check: 70 - 46 = 24, 24 + 11 = 35.",
                "countdown")
    assert got["backtracking"] == 0 and got["verification"] == 1
    # Target-first arithmetic is backward chaining, and the value it asks for a subgoal.
    got = count("Target 24. 24 / 2 = 12, so we need to make 12 from 6, 8 and 10.", "countdown")
    assert got["backward_chaining"] == 1 and got["subgoal_setting"] == 1
    # Restating the target is not a subgoal; a target given by the caller overrides the text.
    assert count("We need to get 87 using 80, 3 and 4. 80 + 3 = 83, 83 + 4 = 87.", "countdown")[
        "subgoal_setting"] == 0
    assert count("we need 12", "countdown", target=12)["subgoal_setting"] == 0
    assert count("we need 12", "countdown", target=60)["subgoal_setting"] == 1


def test_math_rules_and_astro_phrases():
    step = "Let's go back to where we " + "factored the quadratic" + "."
    assert behaviors.ASTRO_BACKTRACK.format(step="factored the quadratic") == step
    negative = " ".join([behaviors.ASTRO_REFLECTION, behaviors.ASTRO_NEGATIVE_VERDICT, step])
    positive = " ".join([behaviors.ASTRO_REFLECTION, behaviors.ASTRO_POSITIVE_VERDICT])
    got = behaviors.count(f"x = 2.\n\n{negative}\n\nx = 3.\n\n{positive}\n\n\\boxed{{3}}", "math")
    assert (got["verification"], got["backtracking"]) == (2, 1)
    got = behaviors.count(f"x = 2. {behaviors.ASTRO_REFLECTION} {behaviors.ASTRO_NEGATIVE_VERDICT} "
                          f"{behaviors.ASTRO_RESTART} x = 3.", "math")
    assert (got["verification"], got["backtracking"]) == (1, 1)
    assert len(behaviors.ASTRO_PHRASES) == 5
    negatives = ["Maria wrote a check for $45.", "The ball comes back down.", "The first term is 3.",
                 "which is a contradiction, so $\\sqrt 2$ is irrational."]
    for text in negatives:
        assert behaviors.count(text, "math") == dict.fromkeys(KEYS, 0), text


# --- API --------------------------------------------------------------------------------------


def test_api_shapes():
    assert set(behaviors.count("", "math")) == set(KEYS)
    assert behaviors.count("", "countdown") == dict.fromkeys(KEYS, 0)
    with pytest.raises(ValueError):
        behaviors.count("x", "chess")
    texts = [t["text"] for t in TRACES if t["domain"] == "math"][:3]
    many = behaviors.count_many(texts, "math")
    assert many == [behaviors.count(t, "math") for t in texts]
    assert behaviors.average([]) == dict.fromkeys(KEYS, 0.0)
    avg = behaviors.average([{"verification": 1, "backtracking": 2, "subgoal_setting": 0, "backward_chaining": 1},
                             {"verification": 2, "backtracking": 0, "subgoal_setting": 0, "backward_chaining": 0}])
    assert avg == {"verification": 1.5, "backtracking": 1.0, "subgoal_setting": 0.0, "backward_chaining": 0.5}


def test_pearson():
    assert behaviors.pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert behaviors.pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    xs, ys = [0.2, 0.5, 0.9, 1.4, 2.0], [0.10, 0.18, 0.22, 0.35, 0.41]
    mx, my = sum(xs) / 5, sum(ys) / 5
    expected = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / math.sqrt(
        sum((x - mx) ** 2 for x in xs) * sum((y - my) ** 2 for y in ys))
    assert behaviors.pearson(xs, ys) == pytest.approx(expected)
    for xs, ys in (([], []), ([1.0], [2.0]), ([1, 1, 1], [1, 2, 3]), ([1, 2], [float("nan"), 1])):
        assert math.isnan(behaviors.pearson(xs, ys))
    with pytest.raises(ValueError):
        behaviors.pearson([1, 2], [1, 2, 3])


# --- robustness and linear time -----------------------------------------------------------

_ALPHABET = st.sampled_from(list("0123456789+-*/=()., \n:;!?<>ab") + ["need ", "check ", "wait, ", "target ",
                                                                     "<answer>", "</answer>", "let's try ",
                                                                     "= 24", "×", "÷", "\u2019", "ǅ", "\x00"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ALPHABET, max_size=200).map("".join), st.sampled_from(behaviors.DOMAINS))
def test_never_raises_on_token_soup(text, domain):
    got = behaviors.count(text, domain)
    assert set(got) == set(KEYS) and all(isinstance(v, int) and v >= 0 for v in got.values())


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.sampled_from(behaviors.DOMAINS))
def test_never_raises_on_arbitrary_text(text, domain):
    got = behaviors.count(text, domain)
    assert all(v >= 0 for v in got.values())


_ADVERSARIAL = {
    "many_steps": lambda n: "".join(f"{i} + {i + 1} = {2 * i + 1}, " for i in range(n // 18))[:n],
    "one_long_expression": lambda n: "1+" * (n // 2) + "= 3",
    "equals_signs": lambda n: "= " * (n // 2),
    "long_whitespace": lambda n: "need" + " " * n + "12",
    "repeated_cues": lambda n: ("Let me check: 3 + 4 = 7, which is the target. Wait, that's not right. "
                                "To find x, we need y. Case 1: so close. " * (n // 120 + 1))[:n],
    "sentence_breaks": lambda n: ". " * (n // 2),
    "open_parentheses": lambda n: "(" * n,
    "huge_numbers": lambda n: "9" * (n // 2) + " + 1 = " + "9" * (n // 2),
    "unclosed_answer": lambda n: "<answer>" + "(" * n,
    "long_word": lambda n: "substitut" + "e" * n + " back",
    "digit_words": lambda n: ("9 is " * (n // 5))[:n],
    "dots_and_digits": lambda n: ("1." * (n // 2))[:n],
}


@pytest.mark.parametrize("name", sorted(_ADVERSARIAL))
def test_linear_time_on_adversarial_inputs(name):
    """10x the input may cost at most 30x the time (quadratic would be ~100x); no absolute
    time is asserted. Sizes 20 KB and 200 KB, best of two runs each."""
    make = _ADVERSARIAL[name]
    small, large = make(20_000), make(200_000)

    def best(text):
        times = []
        for _ in range(2):
            start = time.perf_counter()
            for domain in behaviors.DOMAINS:
                behaviors.count(text, domain)
            times.append(time.perf_counter() - start)
        return min(times)

    t_small, t_large = best(small), best(large)
    ratio = t_large / max(t_small, 1e-3)
    print(f"\n{name}: 20 KB {t_small:.3f}s, 200 KB {t_large:.3f}s, ratio {ratio:.1f}")
    assert ratio < 30, (name, t_small, t_large)


def test_one_megabyte_inputs_complete():
    text = ("Let's try 44 + 19 = 63. That doesn't work. " * 30_000)[:1_000_000]
    for domain in behaviors.DOMAINS:
        got = behaviors.count(text, domain)
        assert got["backtracking"] > 0
