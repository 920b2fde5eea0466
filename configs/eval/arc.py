"""ARC-Challenge test (greedy + 16 samples); set --config.suite.arc_challenge.path."""

from configs.eval.common import benchmark_section, suite_config


def get_config():
    return suite_config({"arc_challenge": benchmark_section()})
