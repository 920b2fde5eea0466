"""Countdown test (TinyZero prompt and reward; greedy + 8 samples at T=1), the default job's
benchmark. Records {target, nums}: e.g. a `records` pipeline stage's held_out.jsonl, or
--config.suite.countdown_test.path=FILE.jsonl / .parquet."""

from configs.eval.common import benchmark_section, suite_config


def get_config():
    # the default job's prompt (chat) and budget
    c = suite_config({"countdown_test": benchmark_section(chat=True, max_new_tokens=64)})
    c.eval.grading_workers = 0  # Countdown grading is linear-time: grade in this process
    return c
