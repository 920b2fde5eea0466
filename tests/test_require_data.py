"""CI's JAXREASON_REQUIRE_DATA=1 (tests/conftest.py): a real-data skip becomes a failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

SKIPPING_TEST = '''
import pytest
import conftest

def test_needs_real_data():
    pytest.skip(f"{conftest.SHARED_DATA / 'missing' / 'file.jsonl'} not present")

def test_skips_for_another_reason():
    pytest.skip("needs 8 devices")
'''


def _run(tmp_path: Path, require: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "test_skipping.py").write_text(SKIPPING_TEST)
    env = {k: v for k, v in os.environ.items() if k != "JAXREASON_REQUIRE_DATA"}
    if require is not None:
        env["JAXREASON_REQUIRE_DATA"] = require
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "conftest", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), str(tmp_path / "test_skipping.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("require", [None, "0"])
def test_missing_data_skips_by_default(tmp_path, require):
    result = _run(tmp_path, require)
    assert result.returncode == 0, result.stdout
    assert "2 skipped" in result.stdout


def test_missing_data_fails_under_require_data(tmp_path):
    result = _run(tmp_path, "1")
    assert result.returncode == 1, result.stdout
    assert "1 failed, 1 skipped" in result.stdout
    assert "JAXREASON_REQUIRE_DATA=1 but this real-data test was skipped" in result.stdout
