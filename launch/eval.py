"""Evaluate a model on a benchmark suite: `python launch/eval.py --config=configs/eval/<suite>.py
--workdir=DIR --config.model.path=MODEL [--config.suite.<benchmark>.path=FILE ...]`.

The same launcher as training (`launch/train.py`: flags, overrides, one-line errors) with the
suite's trainer, "evaluate" (`jaxreason.train.eval_suite`): per-item results in
`DIR/<benchmark>/items.jsonl` (a killed run started again skips finished items), and
`DIR/report.json` + `DIR/report.md` with every figure's bootstrap interval.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import train as launcher  # noqa: E402  (defines --config / --workdir and the error handling)
from absl import app  # noqa: E402

if __name__ == "__main__":
    app.run(launcher.main, flags_parser=launcher.parse_flags)
