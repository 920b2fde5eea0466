"""Generated datasets for CPU-sized recipes: task records made in-process, split into a train
set and a held-out set that shares no instance with it.

A generator returns task records (not prompt/completion pairs): the SFT pipeline turns them
into prompt/completion through the task (`Task.prompt`, `Task.reference_completion`), and the
held-out records are graded by the same task.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from jaxreason.registry import Registry

Record = dict[str, Any]


def countdown_split(options: Mapping[str, Any], seed: int) -> tuple[list[Record], list[Record]]:
    """(train, held_out) Countdown instances from the task's seeded generator.

    options: num_train, num_eval, num_numbers (min, max), number_range, target_range,
    integer_only. Held-out instances are drawn with another seed; no train instance has the
    same numbers (as a multiset) and target as a held-out one.
    """
    from jaxreason.tasks import generate_instances

    shape = dict(num_numbers=tuple(options.get("num_numbers", (3, 3))),
                 number_range=tuple(options.get("number_range", (1, 20))),
                 target_range=tuple(options.get("target_range", (10, 40))),
                 integer_only=bool(options.get("integer_only", True)))
    num_train, num_eval = int(options["num_train"]), int(options.get("num_eval", 0))

    def key(record: Record) -> tuple[tuple[int, ...], int]:
        return tuple(sorted(record["nums"])), int(record["target"])

    held_out, seen = [], set()
    for record in generate_instances(2 * num_eval, seed + 1_000_003, **shape):
        if key(record) not in seen and len(held_out) < num_eval:
            seen.add(key(record))
            held_out.append(record)
    train: list[Record] = []
    round_seed = seed
    while len(train) < num_train:
        batch = generate_instances(num_train - len(train), round_seed, **shape)
        train.extend(r for r in batch if key(r) not in seen)
        round_seed += 7_919
        if round_seed - seed > 7_919 * 50:
            raise RuntimeError(f"countdown: cannot draw {num_train} train instances apart from "
                               f"the held-out ones; widen number_range / target_range")
    return train[:num_train], held_out


# (options, seed) -> (train, held_out); `data.generator` names one
Generator = Callable[[Mapping[str, Any], int], tuple[list[Record], list[Record]]]
GENERATORS: Registry[Generator] = Registry("data generator")
GENERATORS.register("countdown", countdown_split)
GENERATORS.register("arithmetic", "jaxreason.data.arithmetic:arithmetic_split")  # GSM8K format
GENERATORS.register("countdown_srl", "jaxreason.data.srl_steps:countdown_srl_split")  # SRL steps
# priming traces with chosen reasoning behaviors, and the behavior-free "base model" corpus
GENERATORS.register("countdown_traces", "jaxreason.data.countdown_traces:traces_split")
GENERATORS.register("countdown_attempts", "jaxreason.data.countdown_traces:attempts_split")


def generate(name: str, options: Mapping[str, Any], seed: int) -> tuple[list[Record],
                                                                        list[Record]]:
    """(train, held_out) records of the generator `name`."""
    return GENERATORS.get(name)(options, seed)
