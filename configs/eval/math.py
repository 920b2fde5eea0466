"""Math reasoning suite with ASTRO's settings (greedy + 16 samples at T=0.6, top-p 0.95):
MATH-500, AIME 2024 / 2025, AMC 2023, Minerva Math, OlympiadBench. Set each file:

python launch/eval.py --config=configs/eval/math.py --workdir=/tmp/eval --config.model.path=MODEL \
  --config.suite.math500.path=data/math500.jsonl --config.suite.aime24.path=data/aime24.jsonl ...
  [--config.suite.benchmarks=math500]   # a subset
"""

from configs.eval.common import benchmark_section, suite_config


def get_config():
    c = suite_config({name: benchmark_section() for name in
                      ("math500", "aime24", "aime25", "amc23", "minerva_math", "olympiadbench")})
    c.model.dtype = "bfloat16"  # accelerators; use float32 on CPU
    return c
