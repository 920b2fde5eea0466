"""Grading pool: order, per-item and global deadlines, crashes, memory caps, grade_batch."""

from __future__ import annotations

import operator
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from jaxreason.tasks import GradingPool, get, grade_batch
from jaxreason.tasks.grading_pool import JobFailure

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pool():
    with GradingPool(2) as grading_pool:
        yield grading_pool


def test_results_come_back_in_input_order(pool):
    arguments = [(i, 1000) for i in range(500)]
    assert pool.map(operator.add, arguments) == [i + 1000 for i in range(500)]
    assert pool.map(operator.add, []) == []


def test_a_hung_item_times_out_and_the_pool_survives(pool):
    replaced = pool.replaced_workers
    start = time.monotonic()
    results = pool.map(time.sleep, [(0,), (60,), (0,), (0,)], item_timeout_s=1.0)
    assert time.monotonic() - start < 10
    assert results[1] == JobFailure("timeout")
    assert [results[i] for i in (0, 2, 3)] == [None, None, None]
    assert pool.replaced_workers == replaced + 1
    assert pool.map(operator.mul, [(6, 7)]) == [42]


def test_a_crashing_item_fails_alone_and_the_pool_survives(pool):
    results = pool.map(os._exit, [(3,)], item_timeout_s=5.0)
    assert results == [JobFailure("worker_crashed")]
    assert pool.map(operator.add, [(1, 2), (3, 4)]) == [3, 7]


def test_exceptions_and_memory_exhaustion_are_reported_not_raised(pool):
    results = pool.map(int, [("12",), ("x",)])
    assert results[0] == 12
    assert isinstance(results[1], JobFailure) and results[1].reason.startswith("worker_error: ValueError")
    # 16 GB cannot be allocated under the workers' 2 GB address-space cap.
    (memory,) = pool.map(bytearray, [(16 * 1024**3,)], item_timeout_s=10.0)
    assert memory == JobFailure("worker_error: MemoryError")
    assert pool.map(operator.add, [(1, 1)]) == [2]


def test_total_timeout_bounds_the_whole_call(pool):
    start = time.monotonic()
    results = pool.map(time.sleep, [(5,)] * 6, item_timeout_s=30.0, total_timeout_s=1.0)
    assert time.monotonic() - start < 4.5
    assert all(result == JobFailure("total_timeout") for result in results)
    assert pool.map(operator.add, [(2, 2)]) == [4]


def test_concurrent_callers_each_get_their_own_results(pool):
    outputs = {}

    def call(offset):
        outputs[offset] = pool.map(operator.add, [(i, offset) for i in range(50)])

    threads = [threading.Thread(target=call, args=(offset,)) for offset in (100, 200, 300)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(outputs[offset] == [i + offset for i in range(50)] for offset in (100, 200, 300))


def test_unpicklable_items_fail_alone(pool):
    arguments = [(i, 1) for i in range(40)]
    arguments[5] = (threading.Lock(), 1)
    results = pool.map(operator.add, arguments)
    assert results[5].reason.startswith("unpicklable_item: TypeError")
    assert results[:5] + results[6:] == [i + 1 for i in range(40) if i != 5]


def test_workers_that_cannot_start_fail_the_call_instead_of_looping(monkeypatch):
    monkeypatch.setattr(sys, "executable", "/bin/false")
    with GradingPool(1) as broken:
        start = time.monotonic()
        assert broken.map(operator.add, [(1, 2)] * 3) == [JobFailure("worker_start_failed")] * 3
        assert time.monotonic() - start < 30


def test_a_worker_caps_its_own_cpu_time_per_item():
    """Defense without the parent: an item past its CPU allowance is killed by SIGXCPU."""
    code = "from jaxreason.tasks._worker import _cap_cpu_time\n_cap_cpu_time(0.5)\nwhile True: pass"
    start = time.monotonic()
    process = subprocess.run([sys.executable, "-c", code], cwd=REPO, timeout=60)
    assert process.returncode == -signal.SIGXCPU
    assert time.monotonic() - start < 30


def test_close_stops_the_worker_processes():
    grading_pool = GradingPool(1)
    assert grading_pool.map(operator.add, [(1, 2)]) == [3]
    processes = [worker.process for worker in grading_pool._workers]
    grading_pool.close()
    assert all(process.poll() is not None for process in processes)
    with pytest.raises(RuntimeError):
        grading_pool.map(operator.add, [(1, 2)])


MIXED = [
    ("math", {"problem": "p", "solution": "\\boxed{\\frac{\\sqrt{3}}{2}}"}, "so \\boxed{\\frac{\\sqrt3}{2}}"),
    ("math", {"problem": "p", "solution": "\\boxed{\\sqrt{8}}"}, "so \\boxed{2\\sqrt{2}}"),
    ("math", {"problem": "p", "solution": "\\boxed{\\sqrt{8}}"}, "so \\boxed{3\\sqrt{2}}"),
    ("gsm8k", {"question": "q", "answer": "#### 18"}, "The answer is $18.00."),
    ("countdown", {"target": 24, "nums": [1, 2, 3, 4]}, "<answer>(1+2+3)*4</answer>"),
    ("countdown", {"target": 24, "nums": [1, 2, 3, 4]}, "<answer>2**10</answer>"),
    (
        "arc",
        {
            "id": "i",
            "question": {"stem": "s", "choices": [{"text": "x", "label": "A"}, {"text": "y", "label": "B"}]},
            "answerKey": "B",
        },
        "The answer is (B)",
    ),
]


@pytest.mark.parametrize("name", ["math", "gsm8k", "countdown", "arc"])
def test_grade_batch_agrees_with_single_grades(pool, name):
    task = get(name)
    items = [(record, completion) for task_name, record, completion in MIXED if task_name == name] * 20
    records, completions = [r for r, _ in items], [c for _, c in items]
    expected = [task.grade(r, c) for r, c in items]
    assert grade_batch(task, records, completions, pool=pool) == expected
    assert grade_batch(task, records, completions, num_workers=0) == expected


def test_grade_batch_turns_a_timeout_into_a_defined_grade(pool):
    task = get("math", reward="astro")
    record = {"problem": "p", "solution": "\\boxed{5}"}
    completions = ["\\boxed{9^{9^{9^{9}}}}", "\\boxed{5}"]
    start = time.monotonic()
    grades = grade_batch(task, [record] * 2, completions, item_timeout_s=0.5, pool=pool)
    assert time.monotonic() - start < 10
    assert (grades[0].reward, grades[0].correct, grades[0].reason) == (-1.0, False, "timeout")
    assert grades[1].correct


def test_grade_batch_checks_lengths():
    with pytest.raises(ValueError, match="2 records but 1 completions"):
        grade_batch(get("gsm8k"), [{}, {}], ["x"])
