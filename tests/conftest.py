"""Test-session setup: 8 simulated CPU devices (set before JAX is imported) and shared paths.

Real-data tests skip when `../shared/data` (or a file in it) is missing. With
`JAXREASON_REQUIRE_DATA=1` (set by `.ci/run`) such a skip is turned into a failure, so CI
cannot pass while real-data checks silently did not run.
"""

import os
import pathlib

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
REQUIRE_DATA_ENV = "JAXREASON_REQUIRE_DATA"


def require_data() -> bool:
    """Whether a missing real-data file must fail the run instead of skipping the test."""
    return os.environ.get(REQUIRE_DATA_ENV, "") not in ("", "0")


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    """`../shared/data` beside the repository (CI has it); tests skip without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not present")
    return SHARED_DATA


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under JAXREASON_REQUIRE_DATA=1, a skip that names a path under ../shared/data fails."""
    outcome = yield
    report = outcome.get_result()
    if not (require_data() and report.skipped and not hasattr(report, "wasxfail")):
        return
    reason = _skip_reason(report)
    if str(SHARED_DATA) in reason or "shared/data" in reason:
        report.outcome = "failed"
        report.longrepr = (f"{REQUIRE_DATA_ENV}=1 but this real-data test was skipped: {reason}")
