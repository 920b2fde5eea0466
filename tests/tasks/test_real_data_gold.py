"""The MATH and GSM8K graders on the real data, with gold answers found independently.

The gold answer of each record is extracted here by a small brace matcher (MATH) or a plain
string split (GSM8K), not by the grader, and only records whose gold is a plain number here
get the numeric rewrites. Each record then yields completions whose verdict is known in advance:

* rewrites a model really writes for the same answer (`\\boxed{3.0}` for 3, `3/4` for
  `\\frac{3}{4}`, `\\dfrac`, units and `\\text{}` wrappers, "The answer is N.") must grade
  correct;
* near misses (off by one, a flipped sign, an inverted fraction, a rounded repeating decimal,
  another problem's different answer) must grade wrong.

The rates of every rule are printed (`pytest -s`); a rule the grader does not meet yet is an
`xfail(strict=True)` naming the rule, so fixing the grader turns it into a failure to remove.
Dev splits and a fixed train sample run in the fast suite, all of train under `-m slow`.
"""

from __future__ import annotations

import functools
import json
import random
import re
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import pytest

from jaxreason.tasks import get

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def require_data_file(path: Path) -> Path:
    """The path, or a skip naming it (an error under JAXREASON_REQUIRE_DATA=1, see conftest)."""
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path
TRAIN_SAMPLE = 1500  # train records in the fast suite (the slow test takes all of them)


# ----------------------------------------------------------------------------- independent gold

def last_box(text: str) -> str | None:
    """The content of the last `\\boxed{...}` or `\\fbox{...}`: find the command, then count
    braces (skipping backslash-escaped characters) until the opening one closes. `\\boxed 2`
    (a space, no brace; two MATH solutions) boxes the next token."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    rest = text[start:].split(" ", 1)
    if rest[0] in ("\\boxed", "\\fbox") and len(rest) == 2 and not rest[1].startswith("{"):
        return rest[1].split()[0].rstrip("$.")
    open_at = text.index("{", start)
    depth, i = 0, open_at
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[open_at + 1 : i]
        i += 1
    return None


_INT = r"-?\d+"


def plain_value(answer: str) -> Fraction | None:
    """A gold answer that is just a number: `12`, `-3`, `0.25`, `1,000`, `\\frac{3}{4}`,
    `-\\dfrac{1}{2}`, `\\frac34`, `111, \\! 111`. Anything else (units, expressions, text) is None."""
    s = re.sub(r"\s*\\[!,;: ]\s*", "", answer).replace("{,}", "")
    if re.search(r",\s", s):  # "81, 256" lists two answers; "111, \\! 111" is one number
        return None
    s = s.replace(" ", "")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+", s):
        s = s.replace(",", "")
    if re.fullmatch(r"-?\d+(\.\d+)?", s):
        return Fraction(s)
    m = re.fullmatch(r"(-?)\\frac\{(" + _INT + r")\}\{(\d+)\}", s) or re.fullmatch(
        r"(-?)\\frac(\d)(\d)", s)
    if m and int(m.group(3)) != 0:
        value = Fraction(int(m.group(2)), int(m.group(3)))
        return -value if m.group(1) else value
    return None


def fraction_parts(answer: str) -> tuple[str, int, int] | None:
    """(sign, numerator, denominator) of a gold written as one `\\frac{a}{b}` / `\\dfrac{a}{b}`."""
    s = answer.replace(" ", "")
    m = re.fullmatch(r"(-?)\\d?frac\{(\d+)\}\{(\d+)\}", s)
    return (m.group(1), int(m.group(2)), int(m.group(3))) if m else None


def decorated_value(answer: str) -> tuple[str, Fraction] | None:
    """A gold that is a number with a unit, degree, percent or dollar decoration
    (`12 \\text{ inches}`, `45 \\text{ units}^2`, `117^\\circ`, `78\\%`, `\\$1.05`) -> (the
    bare number's text, its value); None for plain numbers and everything else."""
    s = answer.strip()
    bare = re.sub(r"\s*\\(?:text|mbox)\{\s*[a-zA-Z][a-zA-Z ]*\}(?:\^\{?[23]\}?)?$", "", s)
    bare = re.sub(r"\^\{?\\circ\}?$|\\%$", "", bare)
    bare = re.sub(r"^\\\$\s*", "", bare).strip()
    if bare == s:
        return None
    value = plain_value(bare)
    return (bare, value) if value is not None else None


def number_value(answer: str) -> Fraction | None:
    """The value of a plain or decorated numeric gold."""
    value = plain_value(answer)
    if value is None and (decorated := decorated_value(answer)):
        value = decorated[1]
    return value


_SIMPLE_TUPLE = re.compile(r"([(\[])\s*(-?\d+)\s*,\s*(-?\d+)\s*([)\]])")


def text_number(value: Fraction) -> str:
    """A number as a model writes it: integers plain, other values as a reduced `a/b`."""
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def decimal_text(value: Fraction) -> str | None:
    """The exact decimal of a terminating fraction (`3/8` -> `0.375`), else None."""
    d = value.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    if d != 1:
        return None
    scaled, places = value, 0
    while scaled.denominator != 1:
        scaled *= 10
        places += 1
    sign = "-" if scaled < 0 else ""
    digits = str(abs(scaled.numerator)).rjust(places + 1, "0")
    return f"{sign}{digits[:-places]}.{digits[-places:]}" if places else f"{sign}{digits}"


# ----------------------------------------------------------------------------- MATH rules
# A rule maps (gold text, its plain value or None) to a completion, or None when it does not
# apply to that gold.

Rule = Callable[[str, "Fraction | None"], "str | None"]


def _box(answer: str) -> str:
    return f"So the final answer is $\\boxed{{{answer}}}$."


MATH_CORRECT: dict[str, Rule] = {
    # 3 -> \boxed{3.0}
    "integer_as_decimal": lambda g, v: _box(f"{v.numerator}.0") if v is not None and v.denominator == 1 else None,
    # \frac{3}{4} -> \boxed{3/4}
    "frac_as_slash": lambda g, v: _box(f"{p[0]}{p[1]}/{p[2]}") if (p := fraction_parts(g)) else None,
    # \frac{3}{4} -> \boxed{\dfrac{3}{4}}
    "frac_as_dfrac": lambda g, v: _box(g.replace("\\frac", "\\dfrac")) if "\\frac" in g and "\\dfrac" not in g else None,
    # \frac{3}{4} -> \boxed{0.75} (terminating decimals only)
    "frac_as_decimal": lambda g, v: _box(d) if v is not None and v.denominator != 1 and (d := decimal_text(v)) else None,
    # 12 -> \boxed{12 \text{ cm}}
    "number_with_unit_text": lambda g, v: _box(f"{text_number(v)} \\text{{ cm}}") if v is not None and v.denominator == 1 else None,
    # 12 -> \boxed{\text{12}}
    "number_in_text_wrapper": lambda g, v: _box(f"\\text{{{g}}}") if v is not None and "\\" not in g else None,
    # 12 -> \boxed{x = 12}
    "variable_equals_number": lambda g, v: _box(f"x = {g}") if v is not None else None,
    # 12\text{ inches}, 117^\circ, 78\%, \$1.05 (decorated gold) -> \boxed{12}, \boxed{117}, ...
    "gold_decoration_dropped": lambda g, v: _box(d[0]) if (d := decorated_value(g)) else None,
    # \text{(C)} / \text{Sunday} (gold in a \text wrapper) -> \boxed{C} / \boxed{Sunday}
    "gold_text_unwrapped": lambda g, v: _box(m.group(1)) if (
        m := re.fullmatch(r"\\(?:text|textbf|mbox)\{\(?([A-Za-z]+)\)?\}", g.strip())) else None,
    # 2\sqrt{3} -> \boxed{2\sqrt3}
    "sqrt_braces_dropped": lambda g, v: _box(re.sub(r"\\sqrt\{(\d)\}", r"\\sqrt\1", g)) if re.search(r"\\sqrt\{\d\}", g) else None,
    # (1,2) -> \boxed{\left( 1, 2 \right)}
    "tuple_left_right_spaced": lambda g, v: _box(f"\\left{m.group(1)} {m.group(2)}, {m.group(3)} \\right{m.group(4)}") if (
        m := _SIMPLE_TUPLE.fullmatch(g.strip())) else None,
    # 1000 -> \boxed{1,000}
    "thousands_separator": lambda g, v: _box(f"{v.numerator:,}") if v is not None and v.denominator == 1 and abs(v) >= 1000 else None,
    # 12 -> "The answer is 12." (no box; the lenient MATH task)
    "the_answer_is_no_box": lambda g, v: f"Adding these up, the answer is {text_number(v)}." if v is not None else None,
}

MATH_WRONG: dict[str, Rule] = {
    "off_by_one_up": lambda g, v: _box(text_number(n + 1)) if (n := number_value(g)) is not None else None,
    "off_by_one_down": lambda g, v: _box(text_number(n - 1)) if (n := number_value(g)) is not None else None,
    "sign_flipped": lambda g, v: _box(text_number(-v)) if v is not None and v != 0 else None,
    "fraction_inverted": lambda g, v: _box(f"{p[0]}\\frac{{{p[2]}}}{{{p[1]}}}") if (
        p := fraction_parts(g)) and p[1] not in (0, p[2]) else None,
    # 1/3 -> 0.33: a repeating decimal cut to two places is not the answer. (Where the cut is
    # within the grader's 1e-6 relative decimal tolerance it is accepted: see
    # test_two_place_decimal_within_the_relative_tolerance_is_accepted.)
    "repeating_decimal_rounded": lambda g, v: _box(f"{float(v):.2f}") if v is not None and decimal_text(v) is None
    and abs(Fraction(f"{float(v):.2f}") - v) > Fraction(1, 10**6) * max(1, abs(v)) else None,
    # (1,2) -> (2,1); [1,2) -> [1,2]
    "pair_reversed": lambda g, v: _box(f"{m.group(1)}{m.group(3)},{m.group(2)}{m.group(4)}") if (
        m := _SIMPLE_TUPLE.fullmatch(g.strip())) and m.group(1) == "(" and m.group(2) != m.group(3) else None,
    "interval_end_flipped": lambda g, v: _box(f"{m.group(1)}{m.group(2)},{m.group(3)}{')' if m.group(4) == ']' else ']'}") if (
        m := _SIMPLE_TUPLE.fullmatch(g.strip())) and (m.group(1) + m.group(4)) in ("[)", "(]", "[]") else None,
    # 2\sqrt{3} -> 3\sqrt{3} (decided by math-verify in a worker)
    "sqrt_coefficient_changed": lambda g, v: _box(f"{int(m.group(1)) + 1}\\sqrt{{{m.group(2)}}}") if (
        m := re.fullmatch(r"(\d+)\\sqrt\{(\d+)\}", g.strip())) else None,
}

# Rules the grader does not meet yet (name -> why). Empty when every rule passes.
MATH_GAPS: dict[str, str] = {}


def _math_gold(record: dict) -> str | None:
    gold = last_box(record["solution"])
    return gold if gold and gold.strip() else None


@functools.lru_cache(maxsize=None)
def _math(split: str, sample: int | None) -> list[dict]:
    path = require_data_file(DATA / "math" / f"{split}.jsonl")
    records = [json.loads(line) for line in path.open()]
    if sample is not None:
        records = random.Random(0).sample(records, sample)
    return records


def _math_cases(records: list[dict], rules: dict[str, Rule]) -> Iterator[tuple[str, dict, str]]:
    for record in records:
        gold = _math_gold(record)
        if gold is None:
            continue
        value = plain_value(gold)
        for name, rule in rules.items():
            completion = rule(gold, value)
            if completion is not None:
                yield name, record, completion


def _other_answer_cases(records: list[dict], seed: int = 0) -> Iterator[tuple[str, dict, str]]:
    """Each numeric record with another numeric record's different answer, boxed."""
    numeric = [(r, v) for r in records if (g := _math_gold(r)) and (v := plain_value(g)) is not None]
    rng = random.Random(seed)
    for record, value in numeric:
        other, other_value = numeric[rng.randrange(len(numeric))]
        while other_value == value:
            other, other_value = numeric[rng.randrange(len(numeric))]
        yield "another_problems_answer", record, _box(_math_gold(other))


def _rates(cases: Iterator[tuple[str, dict, str]], expect_correct: bool, task) -> dict[str, tuple[int, int, list]]:
    """rule -> (cases graded as expected, cases, a few failures)."""
    out: dict[str, tuple[int, int, list]] = {}
    for name, record, completion in cases:
        grade = task.grade(record, completion)
        good, total, failures = out.get(name, (0, 0, []))
        ok = grade.correct == expect_correct
        if not ok and len(failures) < 5:
            failures.append((record.get("unique_id"), _math_gold(record), completion[-60:], grade.reason))
        out[name] = (good + ok, total + 1, failures)
    return out


def _report(title: str, rates: dict[str, tuple[int, int, list]]) -> None:
    for name, (good, total, _) in sorted(rates.items()):
        print(f"{title} {name}: {good}/{total} = {good / total:.4f}")


def test_independent_gold_extraction_agrees_with_the_grader_on_math():
    """The grader's gold answer is the brace matcher's on every dev and train record."""
    task = get("math")
    for split in ("dev", "train"):
        records = _math(split, None)
        disagree = [(r["unique_id"], last_box(r["solution"]), task.gold_answer(r))
                    for r in records if (last_box(r["solution"]) or None) != (task.gold_answer(r) or None)]
        assert disagree == []
        empty = sorted(r["unique_id"] for r in records if not _math_gold(r))
        if split == "train":
            assert empty == ["train/number_theory/7115.json", "train/number_theory/7117.json"]
        else:
            assert empty == []
        print(f"math {split}: {len(records) - len(empty)}/{len(records)} records have a gold box; "
              f"{sum(plain_value(_math_gold(r)) is not None for r in records if _math_gold(r))} "
              f"are plain numbers")


def _math_params(rules: dict[str, Rule]) -> list:
    return [pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=f"grader gap, rule {name}: {MATH_GAPS[name]}"))
            if name in MATH_GAPS else name for name in rules]


def _check_math_rule(rule: str, records: list[dict]) -> None:
    if rule in MATH_CORRECT:
        task = get("math", lenient_extraction=True)  # lenient only matters for the unboxed rule
        rates = _rates(_math_cases(records, {rule: MATH_CORRECT[rule]}), True, task)
    elif rule == "another_problems_answer":
        rates = _rates(_other_answer_cases(records), False, get("math"))
    else:
        rates = _rates(_math_cases(records, {rule: MATH_WRONG[rule]}), False, get("math"))
    _report(f"math ({len(records)} records)", rates)
    good, total, failures = rates.get(rule, (0, 0, []))
    assert total >= 3, f"rule {rule} applied to only {total} records"
    assert good == total, failures


MATH_RULES = list(MATH_CORRECT) + list(MATH_WRONG) + ["another_problems_answer"]


@pytest.mark.parametrize("rule", _math_params(dict.fromkeys(MATH_RULES)))
def test_math_dev_and_train_sample_rewrites_are_correct_and_near_misses_wrong(rule):
    _check_math_rule(rule, _math("dev", None) + _math("train", TRAIN_SAMPLE))


@pytest.mark.slow
@pytest.mark.parametrize("rule", _math_params(dict.fromkeys(MATH_RULES)))
def test_math_train_rewrites_are_correct_and_near_misses_wrong(rule):
    _check_math_rule(rule, _math("train", None))


# The two MATH train records where a 2-place decimal falls within the 1e-6 relative tolerance.
_WITHIN_TOLERANCE = {"test/intermediate_algebra/828.json": "-1.00", "test/precalculus/90.json": "1.00"}


@pytest.mark.xfail(strict=True, reason="grader gap, rule repeating_decimal_rounded: decimals get a "
                   "1e-6 relative tolerance whatever their precision, so 1.00 passes for 4036082/4036081")
def test_two_place_decimal_within_the_relative_tolerance_is_accepted():
    records = [r for r in _math("train", None) if r["unique_id"] in _WITHIN_TOLERANCE]
    assert len(records) == 2
    task = get("math")
    for record in records:
        assert not task.grade(record, _box(_WITHIN_TOLERANCE[record["unique_id"]])).correct


# ----------------------------------------------------------------------------- GSM8K

def gsm8k_gold(record: dict) -> int:
    """The integer after the last `####`, commas removed (every GSM8K answer is an integer)."""
    return int(record["answer"].rsplit("####", 1)[1].strip().replace(",", ""))


@functools.lru_cache(maxsize=None)
def _gsm8k(split: str) -> list[dict]:
    path = require_data_file(DATA / "gsm8k" / f"{split}.jsonl")
    return [json.loads(line) for line in path.open()]


GSM8K_CORRECT: dict[str, Callable[[int], str]] = {
    "the_answer_is": lambda n: f"She pays 3 + 4 = 7 first. The answer is {n}.",
    "hashes": lambda n: f"3 + 4 = 7\n#### {n}",
    "final_answer_colon": lambda n: f"Final answer: {n}",
    "boxed": lambda n: f"So she has $\\boxed{{{n}}}$ left.",
    "boxed_decimal": lambda n: f"\\boxed{{{n}.0}}",
    "dollars_and_cents": lambda n: f"The answer is ${n:,}.00.",
    "thousands_separator": lambda n: f"#### {n:,}",
    "with_unit_word": lambda n: f"The answer is {n} apples.",
    "wrong_answer_then_corrected": lambda n: f"The answer is {n + 2}. Checking again, the answer is {n}.",
}
GSM8K_WRONG: dict[str, Callable[[int], str]] = {
    "off_by_one_up": lambda n: f"The answer is {n + 1}.",
    "off_by_one_down": lambda n: f"#### {n - 1}",
    "ten_times": lambda n: f"The answer is {n * 10}." if n else None,
    # a model that corrects itself means its last answer
    "right_answer_then_corrected_to_wrong": lambda n: f"The answer is {n}. Checking again, the answer is {n + 2}.",
}


def _gsm8k_check(records: list[dict], name: str) -> tuple[int, int, list]:
    task = get("gsm8k")
    good = total = 0
    failures = []
    if name == "another_problems_answer":
        golds = [gsm8k_gold(r) for r in records]
        rng = random.Random(0)
        cases = []
        for record, gold in zip(records, golds):
            other = golds[rng.randrange(len(golds))]
            while other == gold:
                other = golds[rng.randrange(len(golds))]
            cases.append((record, f"#### {other}", False))
    else:
        rule, expected = (GSM8K_CORRECT[name], True) if name in GSM8K_CORRECT else (GSM8K_WRONG[name], False)
        cases = [(r, c, expected) for r in records if (c := rule(gsm8k_gold(r))) is not None]
    for record, completion, expected in cases:
        grade = task.grade(record, completion)
        total += 1
        if grade.correct == expected:
            good += 1
        elif len(failures) < 5:
            failures.append((gsm8k_gold(record), completion, grade.reason))
    return good, total, failures


GSM8K_RULES = list(GSM8K_CORRECT) + list(GSM8K_WRONG) + ["another_problems_answer"]


@pytest.mark.parametrize("split", ["dev", "train"])
def test_independent_gold_agrees_with_the_grader_on_gsm8k(split):
    task = get("gsm8k")
    records = _gsm8k(split)
    disagree = [i for i, r in enumerate(records) if Fraction(task.gold_answer(r)) != gsm8k_gold(r)]
    assert disagree == []


@pytest.mark.parametrize("rule", GSM8K_RULES)
@pytest.mark.parametrize("split", ["dev", "train"])
def test_gsm8k_rewrites_are_correct_and_near_misses_wrong(split, rule):
    good, total, failures = _gsm8k_check(_gsm8k(split), rule)
    print(f"gsm8k {split} {rule}: {good}/{total} = {good / total:.4f}")
    assert total >= 150
    assert good == total, failures
