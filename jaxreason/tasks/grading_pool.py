"""Grading in worker processes with per-item and global time limits: `grade_batch`.

Why processes, and why our own pool:

* Symbolic equivalence (math-verify, SymPy) can hang or eat memory on adversarial text, and
  math-verify's own timeouts use SIGALRM, which cannot interrupt long C-level big-integer
  work and does not work outside the main thread. The only reliable limit is to kill the
  process doing the work.
* `concurrent.futures.ProcessPoolExecutor` marks the whole pool broken when one worker dies
  and cannot kill a single hung task. Here each worker is a subprocess we own: a hung worker
  is killed and replaced, a crashed one is replaced, and the item it held gets a defined
  failure ("timeout", "worker_crashed") instead of an exception in the training loop.
* Workers are fresh interpreters (`python -m jaxreason.tasks._worker`), not forks: the
  training process holds JAX threads (fork is unsafe) and its `__main__` may import JAX
  (multiprocessing's spawn/forkserver re-import `__main__` in every child). A worker imports
  only the grader, caps its address space (RLIMIT_AS) and each item's CPU time (RLIMIT_CPU),
  and exits when the parent goes.

Items are sent in small chunks (one pipe round trip per chunk, not per item); a worker
reports each item as it finishes, so the parent always knows which item is running and its
deadline. Pools are reusable across batches (`default_pool`), so worker start-up (~0.5 s) is
paid once.
"""

from __future__ import annotations

import atexit
import collections
import dataclasses
import math
import os
import pickle
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Sequence

from jaxreason.tasks.base import Grade, Record, Task

# Set to True inside grading worker processes (by `_worker`): code that would otherwise
# delegate risky work to the pool runs it directly there.
IN_WORKER = False

DEFAULT_MEMORY_LIMIT_MB = 2048
_STARTUP_TIMEOUT_S = 60.0
_MAX_CONSECUTIVE_START_FAILURES = 3


def in_worker() -> bool:
    """Whether this process is a grading worker."""
    return IN_WORKER


@dataclasses.dataclass(frozen=True)
class JobFailure:
    """The result of an item that produced no value: timeout, crash or an exception."""

    reason: str


class _Worker:
    """One grading subprocess and the items it is working on."""

    def __init__(self, memory_limit_mb: int) -> None:
        to_child_read, to_child_write = os.pipe()
        from_child_read, from_child_write = os.pipe()
        env = dict(os.environ)
        # The child must import jaxreason (and the task's module) exactly as this process does.
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) if p else os.getcwd() for p in sys.path)
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "jaxreason.tasks._worker",
                    str(to_child_read),
                    str(from_child_write),
                    str(memory_limit_mb),
                ],
                pass_fds=(to_child_read, from_child_write),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=env,
                close_fds=True,
            )
        finally:
            os.close(to_child_read)
            os.close(from_child_write)
        self.send_connection = Connection(to_child_write, readable=False)
        self.receive_connection = Connection(from_child_read, writable=False)
        self.ready = False
        self.start_deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        self.items: collections.deque[int] = collections.deque()
        self.item_deadline = math.inf

    @property
    def busy(self) -> bool:
        return bool(self.items)

    def kill(self) -> None:
        for connection in (self.send_connection, self.receive_connection):
            try:
                connection.close()
            except OSError:
                pass
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - a kill -9 that did not take
            pass



def _picklable(arguments: Any, index: int, fail: Callable[[int, str], None]) -> bool:
    try:
        pickle.dumps(arguments)
        return True
    except Exception as error:
        fail(index, f"unpicklable_item: {type(error).__name__}: {error}"[:200])
        return False


class GradingPool:
    """A fixed number of grading worker processes that survive hung and crashing items.

    `map(fn, argument_tuples, ...)` runs `fn(*arguments)` for each item in a worker and
    returns the results in order; an item that failed gives a `JobFailure`. `fn` and the
    arguments must pickle, and `fn` must be importable by module path in a fresh interpreter.
    Thread-safe (calls are serialized).
    """

    def __init__(self, num_workers: int | None = None, *, memory_limit_mb: int = DEFAULT_MEMORY_LIMIT_MB) -> None:
        self.num_workers = max(1, num_workers or os.cpu_count() or 1)
        self.memory_limit_mb = memory_limit_mb
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        self.replaced_workers = 0  # how many workers were killed or died and were replaced

    def _start_missing_workers(self) -> None:
        while len(self._workers) < self.num_workers:
            self._workers.append(_Worker(self.memory_limit_mb))

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        self._workers.remove(worker)
        self.replaced_workers += 1
        self._workers.append(_Worker(self.memory_limit_mb))

    def map(
        self,
        fn: Callable[..., Any],
        arguments: Sequence[tuple[Any, ...]],
        *,
        item_timeout_s: float = 10.0,
        total_timeout_s: float | None = None,
    ) -> list[Any]:
        """Runs `fn(*arguments[i])` for every i in worker processes; results in input order.

        item_timeout_s: wall-clock limit per item; the worker running an item past it is
          killed and replaced, and the item gets `JobFailure("timeout")`.
        total_timeout_s: limit for the whole call; items not finished by then get
          `JobFailure("total_timeout")`.
        """
        if self._closed:
            raise RuntimeError("GradingPool is closed")
        with self._lock:
            return self._map_locked(fn, arguments, item_timeout_s, total_timeout_s)

    def _map_locked(
        self,
        fn: Callable[..., Any],
        arguments: Sequence[tuple[Any, ...]],
        item_timeout_s: float,
        total_timeout_s: float | None,
    ) -> list[Any]:
        count = len(arguments)
        results: list[Any] = [None] * count
        finished = [False] * count
        if count == 0:
            return results
        function_bytes = pickle.dumps(fn)
        queue = collections.deque(range(count))
        total_deadline = time.monotonic() + total_timeout_s if total_timeout_s else math.inf
        start_failures = 0
        self._start_missing_workers()

        def fail(index: int, reason: str) -> None:
            if not finished[index]:
                results[index] = JobFailure(reason)
                finished[index] = True

        def encode(chunk: list[int]) -> bytes:
            return pickle.dumps((function_bytes, [(i, arguments[i]) for i in chunk], item_timeout_s))

        def give_back(worker: _Worker) -> None:
            """Puts a worker's unstarted items back at the front of the queue."""
            for index in reversed(worker.items):
                if not finished[index]:
                    queue.appendleft(index)
            worker.items.clear()

        while True:
            now = time.monotonic()
            in_flight = any(worker.busy for worker in self._workers)
            if not queue and not in_flight:
                break
            if now >= total_deadline:
                break
            # Dispatch to idle, ready workers.
            idle = [worker for worker in self._workers if worker.ready and not worker.busy]
            for worker in idle:
                if not queue:
                    break
                chunk_size = max(1, min(64, math.ceil(len(queue) / (4 * self.num_workers))))
                chunk = [queue.popleft() for _ in range(min(chunk_size, len(queue)))]
                try:
                    message = encode(chunk)
                except Exception:  # an argument that does not pickle fails alone
                    chunk = [index for index in chunk if _picklable(arguments[index], index, fail)]
                    if not chunk:
                        continue
                    message = encode(chunk)
                try:
                    worker.send_connection.send_bytes(message)
                except (OSError, ValueError):  # the worker died while idle: retry elsewhere
                    queue.extendleft(reversed(chunk))
                    self._replace(worker)
                    continue
                worker.items.extend(chunk)
                worker.item_deadline = time.monotonic() + item_timeout_s
            # Wait for results, readiness or deaths, up to the nearest deadline.
            watched = [worker for worker in self._workers if worker.busy or not worker.ready]
            if not watched:
                continue
            nearest = min(
                [total_deadline]
                + [w.item_deadline for w in watched if w.busy]
                + [w.start_deadline for w in watched if not w.ready]
            )
            by_connection = {worker.receive_connection: worker for worker in watched}
            ready_connections = wait(list(by_connection), timeout=max(0.0, nearest - time.monotonic()))
            for connection in ready_connections:
                worker = by_connection[connection]
                # Drain everything this worker has sent so far.
                while worker in self._workers:
                    try:
                        if not connection.poll():
                            break
                        message = connection.recv()
                    except (EOFError, OSError):
                        if worker.busy:
                            fail(worker.items.popleft(), "worker_crashed")
                            give_back(worker)
                        elif not worker.ready:
                            start_failures += 1
                        self._replace(worker)
                        break
                    if message == "ready":
                        worker.ready = True
                        start_failures = 0
                        continue
                    index, ok, payload = message
                    if worker.items and worker.items[0] == index:
                        worker.items.popleft()
                    if not finished[index]:
                        results[index] = payload if ok else JobFailure(f"worker_error: {payload}")
                        finished[index] = True
                    worker.item_deadline = time.monotonic() + item_timeout_s
            # Kill workers past their deadlines.
            now = time.monotonic()
            for worker in list(self._workers):
                if worker.busy and now >= worker.item_deadline:
                    fail(worker.items.popleft(), "timeout")
                    give_back(worker)
                    self._replace(worker)
                elif not worker.ready and now >= worker.start_deadline:
                    start_failures += 1
                    self._replace(worker)
            if start_failures >= _MAX_CONSECUTIVE_START_FAILURES:
                for index in range(count):
                    fail(index, "worker_start_failed")
                break

        # Global deadline (or start failure): whatever is left failed; workers still holding
        # items are killed so that stale results never leak into a later call.
        for worker in list(self._workers):
            if worker.busy:
                for index in worker.items:
                    fail(index, "total_timeout")
                worker.items.clear()
                self._replace(worker)
        for index in queue:
            fail(index, "total_timeout")
        return results

    def close(self) -> None:
        """Stops all workers. The pool cannot be used afterwards."""
        with self._lock:
            self._closed = True
            for worker in self._workers:  # workers hold no state: no need for a graceful exit
                worker.kill()
            self._workers.clear()

    def __enter__(self) -> "GradingPool":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __del__(self) -> None:  # best effort; `close()` is the contract
        try:
            if not self._closed:
                for worker in self._workers:
                    worker.kill()
        except Exception:
            pass


_DEFAULT_POOLS: dict[int, GradingPool] = {}
_DEFAULT_POOLS_LOCK = threading.Lock()


# Workers a default pool gets when none is asked for: each holds SymPy (~100 MB), so a
# 200-core host should not start 200 of them unasked.
DEFAULT_MAX_WORKERS = 8


def default_pool(num_workers: int | None = None) -> GradingPool:
    """A process-wide pool per worker count, started on first use and closed at exit.

    num_workers: None means min(CPU count, DEFAULT_MAX_WORKERS).
    """
    count = max(1, num_workers or min(os.cpu_count() or 1, DEFAULT_MAX_WORKERS))
    with _DEFAULT_POOLS_LOCK:
        pool = _DEFAULT_POOLS.get(count)
        if pool is None or pool._closed:
            pool = GradingPool(count)
            _DEFAULT_POOLS[count] = pool
        return pool


@atexit.register
def close_default_pools() -> None:
    """Stops the default pools' workers (also registered to run at interpreter exit)."""
    with _DEFAULT_POOLS_LOCK:
        for pool in _DEFAULT_POOLS.values():
            pool.close()
        _DEFAULT_POOLS.clear()


def run_with_timeout(fn: Callable[..., Any], arguments: tuple[Any, ...], timeout_s: float) -> Any:
    """Runs one call in the default single-worker pool; a `JobFailure` if it failed."""
    pool = default_pool(1)
    total_s = timeout_s + _STARTUP_TIMEOUT_S  # a replacement worker may have to start first
    return pool.map(fn, [arguments], item_timeout_s=timeout_s, total_timeout_s=total_s)[0]


def grade_batch(
    task: Task,
    records: Sequence[Record],
    completions: Sequence[str],
    *,
    item_timeout_s: float = 10.0,
    total_timeout_s: float | None = None,
    num_workers: int | None = None,
    pool: GradingPool | None = None,
) -> list[Grade]:
    """Grades `completions[i]` against `records[i]` in parallel worker processes.

    Never raises for a bad item: an item past `item_timeout_s`, one whose worker crashed, and
    every item unfinished at `total_timeout_s` get `task.failed_grade(reason)` (the incorrect
    reward, `correct=False`, reason "timeout" / "worker_crashed" / "total_timeout").
    `num_workers=0` runs `task.grade` in a loop in this process: no per-item limit, but MATH's
    symbolic checks still go to a worker with a deadline and the other graders are linear-time
    (for those it is also faster than the pool). None uses `default_pool()`.
    """
    if len(records) != len(completions):
        raise ValueError(f"grade_batch got {len(records)} records but {len(completions)} completions")
    if num_workers == 0:
        return [task.grade(record, completion) for record, completion in zip(records, completions)]
    pool = pool or default_pool(num_workers)
    outputs = pool.map(
        task.grade,
        list(zip(records, completions)),
        item_timeout_s=item_timeout_s,
        total_timeout_s=total_timeout_s,
    )
    return [
        task.failed_grade(output.reason) if isinstance(output, JobFailure) else output
        for output in outputs
    ]
