"""Benchmarks by name: which task grades them, with which answer conventions and which of the
papers' sampling settings. Files are always local (`path`): nothing is downloaded.

A benchmark is a task (with options) plus defaults a suite config may override. MATH-style
benchmarks use the math grader with their conventions (`benchmark=` option: AIME integers,
Minerva's final-answer normalization, OlympiadBench answer types); GSM8K, ARC and Countdown use
their own tasks.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from jaxreason.registry import Registry


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """task / task_options: how items are prompted and graded. The rest are defaults:
    chat (chat template), max_new_tokens, temperature (0: greedy only), n (samples per item
    for pass@k / maj@k), top_p, stop (stop strings)."""

    name: str
    task: str
    task_options: tuple[tuple[str, Any], ...] = ()
    chat: bool = True
    max_new_tokens: int = 2048
    temperature: float = 0.6
    top_p: float = 0.95
    n: int = 16
    stop: tuple[str, ...] = ()

    def make_task(self, **overrides: Any) -> Any:
        from jaxreason import tasks

        return tasks.get(self.task, **{**dict(self.task_options), **overrides})


BENCHMARKS: Registry[Benchmark] = Registry("benchmark")


def register_benchmark(benchmark: Benchmark) -> Benchmark:
    BENCHMARKS.register(benchmark.name, benchmark)
    return benchmark


def get_benchmark(name: str) -> Benchmark:
    return BENCHMARKS.get(name)


# The papers' evaluation settings (ASTRO: 16 samples at T=0.6 and greedy; SRL: Avg@32 at T=1).
for _benchmark in (
    Benchmark("math500", "math", (("benchmark", "math500"),)),
    Benchmark("aime24", "math", (("benchmark", "aime"),), max_new_tokens=4096),
    Benchmark("aime25", "math", (("benchmark", "aime"),), max_new_tokens=4096),
    Benchmark("amc23", "math", (("benchmark", "amc"),), max_new_tokens=4096),
    Benchmark("minerva_math", "math", (("benchmark", "minerva"),)),
    Benchmark("olympiadbench", "math", (("benchmark", "olympiadbench"),)),
    Benchmark("gsm8k_test", "gsm8k", max_new_tokens=512),
    Benchmark("arc_challenge", "arc", max_new_tokens=512),
    Benchmark("countdown_test", "countdown", (("reward", "tinyzero"),), chat=False,
              max_new_tokens=256, temperature=1.0, n=8),
):
    register_benchmark(_benchmark)
