"""Synthetic grade-school arithmetic word problems in GSM8K format (the Iterative RPO CPU
recipe): `{"question", "answer"}` records whose answer is one equation per operation and
`#### <number>` on the last line, so the `gsm8k` task prompts, grades and gives SFT targets.

A problem starts from a count of things a person has and applies 1-3 operations, each one
sentence: buy / find more (+), give away / eat (-), end up with k times as many (x), or, as the
last operation only, share equally among friends (/, exact). Every intermediate value is a
non-negative integer. Example (2 operations):

    Question: Mia has 12 pencils. She buys 7 more pencils. Then she gives 5 pencils to a
    friend. How many pencils does Mia have now?
    Answer: 12 + 7 = 19
    19 - 5 = 14
    #### 14

`arithmetic_split(options, seed)` is the registered generator (`data.generator =
"arithmetic"`): options num_train, num_eval, min_ops / max_ops (1 / 3), max_start (30),
max_operand (20), max_factor (4), max_divisor (5). Held-out problems are drawn with another
seed and no train problem has the same question text as a held-out one.
"""

from __future__ import annotations

import random
from typing import Any, Mapping

NAMES = (("Mia", "She"), ("Tom", "He"), ("Ava", "She"), ("Leo", "He"), ("Zoe", "She"),
         ("Sam", "He"), ("Ivy", "She"), ("Max", "He"), ("Lily", "She"), ("Ben", "He"))
ITEMS = ("apples", "pencils", "marbles", "stickers", "cookies", "books", "shells", "cards",
         "coins", "balloons")


def make_problem(rng: random.Random, *, min_ops: int = 1, max_ops: int = 3, max_start: int = 30,
                 max_operand: int = 20, max_factor: int = 4, max_divisor: int = 5
                 ) -> dict[str, Any]:
    """One `{"question", "answer", "num_ops"}` record."""
    name, pronoun = rng.choice(NAMES)
    item = rng.choice(ITEMS)
    value = rng.randint(2, max_start)
    sentences = [f"{name} has {value} {item}."]
    steps: list[str] = []
    num_ops = rng.randint(min_ops, max_ops)
    question = f"How many {item} does {name} have now?"
    for op_index in range(num_ops):
        last = op_index == num_ops - 1
        kinds = ["add", "sub", "mul"] + (["div"] if last else [])
        kind = rng.choice(kinds)
        if kind == "sub" and value < 2:
            kind = "add"
        if kind == "div":
            divisors = [d for d in range(2, max_divisor + 1) if value % d == 0]
            if not divisors:
                kind = "add"
        then = "" if op_index == 0 else "Then "
        subject = pronoun if op_index == 0 else pronoun.lower()
        if kind == "add":
            b = rng.randint(1, max_operand)
            verb = rng.choice(("buys", "finds", "gets"))
            sentences.append(f"{then}{subject} {verb} {b} more {item}.")
            steps.append(f"{value} + {b} = {value + b}")
            value += b
        elif kind == "sub":
            b = rng.randint(1, min(max_operand, value - 1))
            verb = rng.choice(("gives", "sells", "loses"))
            tail = " to a friend" if verb == "gives" else ""
            sentences.append(f"{then}{subject} {verb} {b} {item}{tail}.")
            steps.append(f"{value} - {b} = {value - b}")
            value -= b
        elif kind == "mul":
            k = rng.randint(2, max_factor)
            sentences.append(f"{then}{subject} ends up with {k} times as many {item}.")
            steps.append(f"{value} * {k} = {value * k}")
            value *= k
        else:
            d = rng.choice(divisors)
            sentences.append(f"{then}{subject} shares the {item} equally among {d} friends.")
            steps.append(f"{value} / {d} = {value // d}")
            value //= d
            question = f"How many {item} does each friend get?"
    text = " ".join(sentences[:1] + [s[0].upper() + s[1:] for s in sentences[1:]])
    return {"question": f"{text} {question}",
            "answer": "\n".join(steps + [f"#### {value}"]), "num_ops": num_ops}


def arithmetic_split(options: Mapping[str, Any], seed: int
                     ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, held_out) problems; held-out ones from another seed, none shared with train."""
    shape = {k: int(options[k]) for k in ("min_ops", "max_ops", "max_start", "max_operand",
                                          "max_factor", "max_divisor") if k in options}
    num_train, num_eval = int(options["num_train"]), int(options.get("num_eval", 0))
    if not 1 <= shape.get("min_ops", 1) <= shape.get("max_ops", 3):
        raise ValueError("arithmetic: need 1 <= min_ops <= max_ops")
    rng = random.Random(seed + 1_000_003)
    held_out, seen = [], set()
    for _ in range(50 * max(num_eval, 1)):
        if len(held_out) >= num_eval:
            break
        record = make_problem(rng, **shape)
        if record["question"] not in seen:
            seen.add(record["question"])
            held_out.append(record)
    rng = random.Random(seed)
    train: list[dict[str, Any]] = []
    for _ in range(50 * max(num_train, 1)):
        if len(train) >= num_train:
            break
        record = make_problem(rng, **shape)
        if record["question"] not in seen:
            train.append(record)
    if len(train) < num_train or len(held_out) < num_eval:
        raise RuntimeError(f"arithmetic: could not draw {num_train} train and {num_eval} "
                           f"held-out problems apart; widen the number ranges")
    return train, held_out
