"""Toy reward-model records: a step is good when it repeats the prompt's letter."""

from __future__ import annotations

import json
import pathlib
import random

LETTERS = "abcdefgh"


def prm_records(n: int = 64, seed: int = 0) -> list[dict]:
    """Prompts "Pick x:"; steps "x\\n" (label 1) or another letter (label 0), 1-3 steps."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        letter = rng.choice(LETTERS)
        steps, labels = [], []
        for _ in range(rng.randint(1, 3)):
            good = rng.random() < 0.5
            steps.append(f"{letter if good else rng.choice(LETTERS.replace(letter, ''))}\n")
            labels.append(1.0 if good else 0.0)
        out.append({"prompt": f"Pick {letter}:", "steps": steps, "labels": labels})
    return out


def orm_records(n: int = 64, seed: int = 0) -> list[dict]:
    """Graded-sample records: correct when the completion repeats the prompt's letter."""
    return [{"prompt": r["prompt"], "completion": r["steps"][0], "correct": bool(r["labels"][0])}
            for r in prm_records(n, seed)]


def bt_records(n: int = 64, seed: int = 0) -> list[dict]:
    """Pairs: the prompt's letter is chosen, another letter rejected."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        letter = rng.choice(LETTERS)
        other = rng.choice(LETTERS.replace(letter, ""))
        out.append({"prompt": f"Pick {letter}:", "chosen": f"{letter}\n", "rejected": f"{other}\n"})
    return out


def write_jsonl(path: pathlib.Path, records: list) -> pathlib.Path:
    with open(path, "w") as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return path


def values_alone(params, config, tokens, width: int = 64):
    """`value_head.values` of one token sequence alone (padded at the end to one shape, so
    one compile serves every sequence; causal attention leaves the real positions as they
    are)."""
    import jax.numpy as jnp
    import numpy as np

    ids = np.zeros((1, width), np.int32)
    mask = np.zeros((1, width), np.int32)
    ids[0, :len(tokens)], mask[0, :len(tokens)] = tokens, 1
    return np.asarray(_jitted_values()(params, config, jnp.asarray(ids), None,
                                       jnp.asarray(mask))[0])[:len(tokens)]


def _jitted_values():
    import jax

    from jaxreason.model import value_head

    global _VALUES
    if _VALUES is None:
        _VALUES = jax.jit(value_head.values, static_argnums=1)
    return _VALUES


_VALUES = None
