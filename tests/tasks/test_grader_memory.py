"""The grading workers' 2 GB address-space cap, measured in the worker, not in pytest.

A job grows a worker's memory 32 MB at a time until an allocation is refused; the worker's
peak address space (`VmPeak`) and resident set (`VmHWM`) are read from `/proc/<pid>/status`
by the test process while the worker is still alive, and the job's own report must agree.
A job that allocates without bound fails alone with a reported `MemoryError`, and the same
pool (the same worker, its memory released) keeps grading.
"""

from __future__ import annotations

import operator

import pytest

from jaxreason.tasks import GradingPool, get, grade_batch
from jaxreason.tasks.grading_pool import DEFAULT_MEMORY_LIMIT_MB, JobFailure

import memory_probe

CAP_MB = 2048
# Python, the grader and SymPy imported before the cap take a few hundred MB of address
# space, so the job itself can hold 2048 minus that: far more than 1 GB, never 2 GB.
MIN_HELD_MB = 1024


@pytest.fixture(scope="module")
def pool():
    assert DEFAULT_MEMORY_LIMIT_MB == CAP_MB
    with GradingPool(1) as grading_pool:  # the default cap
        yield grading_pool


def _worker_pid(pool: GradingPool) -> int:
    (worker,) = pool._workers
    return worker.process.pid


def test_a_worker_cannot_grow_past_its_2gb_cap(pool):
    assert pool.map(operator.add, [(1, 2)]) == [3]  # the worker is up
    pid = _worker_pid(pool)
    (report,) = pool.map(memory_probe.grow_until_refused, [(3 * CAP_MB,)], item_timeout_s=60.0)
    assert not isinstance(report, JobFailure), report
    print(f"worker memory: {report}")
    assert report["refused"], f"the worker held {report['held_mb']} MB without a refusal"
    assert MIN_HELD_MB <= report["held_mb"] < CAP_MB
    # Measured directly by this process on the (same, still alive) worker.
    assert _worker_pid(pool) == pid
    peak_mb = memory_probe.status_mb("VmPeak", str(pid))
    resident_mb = memory_probe.status_mb("VmHWM", str(pid))
    print(f"worker {pid}: VmPeak {peak_mb:.0f} MB, VmHWM {resident_mb:.0f} MB")
    assert peak_mb <= CAP_MB
    assert report["held_mb"] <= resident_mb <= peak_mb  # the blocks really were resident
    assert abs(peak_mb - report["VmPeak"]) < 1.0


def test_a_job_that_allocates_without_bound_fails_alone_and_the_pool_goes_on(pool):
    replaced = pool.replaced_workers
    results = pool.map(operator.add, [(1, 1)]) + pool.map(
        memory_probe.grow_without_limit, [()], item_timeout_s=60.0) + pool.map(operator.add, [(2, 2)])
    assert results == [2, JobFailure("worker_error: MemoryError"), 4]
    # Grading goes on in the same worker, whose memory was given back.
    task = get("math")
    record = {"problem": "p", "solution": "\\boxed{\\frac{1}{2}}"}
    grades = grade_batch(task, [record] * 2, ["\\boxed{0.5}", "\\boxed{2}"], pool=pool)
    assert [g.correct for g in grades] == [True, False]
    assert pool.replaced_workers == replaced
    assert memory_probe.status_mb("VmRSS", str(_worker_pid(pool))) < 1024
