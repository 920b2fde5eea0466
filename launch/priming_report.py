"""Tables and figures of a priming study (`configs/behaviors_countdown_tiny.py`):
`python launch/priming_report.py --workdir=DIR`.

Writes `priming_report.{json,md}`, `priming_accuracy.png` and `priming_behaviors.png` into the
study's workdir from whatever arms and seeds have run (`jaxreason.train.priming_report`).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "The study's workdir (holds seed_<s>/).",
                               required=True)


def main(argv: list[str]) -> None:
    del argv
    from jaxreason.train.priming_report import write_report

    write_report(_WORKDIR.value)


if __name__ == "__main__":
    app.run(main)
