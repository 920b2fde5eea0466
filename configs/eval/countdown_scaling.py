"""Test-time scaling on Countdown: accuracy against generated tokens per problem for best-of-N
(oracle = pass@N, mean log-prob), self-consistency (plain, weighted), step beam search (one
line = one step) and adaptive self-consistency, on the same model and problems.

python launch/eval.py --config=configs/eval/countdown_scaling.py --workdir=/tmp/scaling \
  --config.model.path=/tmp/countdown_tiny/grpo --config.suite.countdown_test.path=HELD_OUT.jsonl
"""

from ml_collections import ConfigDict

from configs.eval import countdown


def get_config():
    c = countdown.get_config()
    c.trainer = "scaling"
    c.suite.countdown_test.num_items = 100
    c.suite.countdown_test.temperature = 1.0
    c.scaling = ConfigDict()
    c.scaling.ns = "1,2,4,8,16"  # samples per problem (best-of-N, self-consistency)
    c.scaling.beams = "2x2,4x2,4x4"  # step beam search (width x branching)
    c.scaling.beam_rounds = 6  # steps per beam at most
    c.scaling.beam_step_tokens = 32  # tokens per step at most
    c.scaling.delimiter = "\\n"  # step delimiter(s), "|"-separated, escapes allowed
    c.scaling.thresholds = "0.5,0.75,0.9"  # adaptive self-consistency vote shares
    c.scaling.adaptive_chunk = 2  # samples per round of adaptive self-consistency
    return c
