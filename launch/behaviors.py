"""Behavior counts and accuracy over a run's checkpoints:
`python launch/behaviors.py --run=WORKDIR --domain=countdown [--out=DIR]`.

Reads the in-training evaluations (`<run>/[<stage>/]eval/step_<k>/items.jsonl`), writes
`behaviors.json` (per step: accuracy and mean counts of verification, backtracking, subgoal
setting and backward chaining; Pearson correlation of each with accuracy) and `behaviors.png`.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402

_RUN = flags.DEFINE_string("run", None, "Run (or pipeline) workdir.", required=True)
_DOMAIN = flags.DEFINE_enum("domain", "countdown", ["countdown", "math"], "Trace domain.")
_OUT = flags.DEFINE_string("out", None, "Output directory (default: the run directory).")


def main(argv: list[str]) -> None:
    del argv
    from jaxreason.evaluation.behavior_report import write_behavior_report

    report = write_behavior_report(_RUN.value, _DOMAIN.value, _OUT.value)
    for p in report["points"]:
        print(json.dumps(p))
    print(json.dumps({"pearson_with_accuracy": report["pearson_with_accuracy"]}))


if __name__ == "__main__":
    app.run(main)
