"""GSM8K test (greedy + 16 samples). Default file: ../shared/data/gsm8k/dev.jsonl style
records {question, answer "... #### N"}; set --config.suite.gsm8k_test.path."""

from configs.eval.common import benchmark_section, suite_config


def get_config():
    return suite_config({"gsm8k_test": benchmark_section()})
