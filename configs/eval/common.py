"""Shared pieces of the evaluation suites: the base config with trainer "evaluate" and one
`suite.<name>` section per benchmark (every setting overridable on the command line)."""

from ml_collections import ConfigDict
from ml_collections.config_dict import placeholder

from configs import base


def benchmark_section(path: str | None = None, **settings) -> ConfigDict:
    """A benchmark's settings; None means the benchmark's registered default (the paper's)."""
    s = ConfigDict()
    s.path = placeholder(str) if path is None else path  # the local benchmark file
    s.num_items = 0  # evaluate at most this many items (0: all)
    s.chat = placeholder(bool)  # chat template (default: the benchmark's)
    s.greedy = True  # one greedy completion per item (greedy accuracy)
    s.n = placeholder(int)  # sampled completions per item for pass@k / maj@k (0: none)
    s.temperature = placeholder(float)  # sampling temperature of the n samples
    s.top_p = placeholder(float)  # nucleus of the n samples
    s.max_new_tokens = placeholder(int)  # generation budget
    s.stop = placeholder(str)  # stop strings, "|"-separated
    for key, value in settings.items():
        s[key] = value
    return s


def suite_config(benchmarks: dict[str, ConfigDict]) -> ConfigDict:
    c = base.get_config()
    c.trainer = "evaluate"
    c.suite.benchmarks = ",".join(benchmarks)
    for name, section in benchmarks.items():
        c.suite[name] = section
    c.eval.batch_size = 64  # items per sampling call
    return c
