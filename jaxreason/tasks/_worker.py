"""Entry point of a grading worker process: `python -m jaxreason.tasks._worker READ_FD WRITE_FD MB`.

The protocol (pickled messages over two pipes, see `grading_pool`):
  parent -> worker: `(pickled_function, [(index, argument_tuple), ...], item_timeout_s)`;
    EOF or None to stop.
  worker -> parent: "ready" once, then `(index, ok, result_or_error_text)` per item, in order.

Before accepting work the worker imports the symbolic stack (so the first item is not billed
for it), caps its address space (RLIMIT_AS) so a runaway computation fails with MemoryError
instead of exhausting the machine, and disables core dumps. Before each item it caps its CPU
time (RLIMIT_CPU), so that even if the parent is gone a runaway item ends; it exits when its
input pipe closes (the parent closed the pool or died).
"""

from __future__ import annotations

import logging
import pickle
import resource
import signal
import sys
from multiprocessing.connection import Connection
from typing import Any, Callable


def _cap_cpu_time(seconds: float) -> None:
    """Lets the coming item use at most `seconds` more CPU time (SIGXCPU kills us after).

    The parent enforces the wall-clock deadline by killing this process; this cap is the
    defense that needs no parent: if the parent died, a runaway item still ends. (Not
    PR_SET_PDEATHSIG: it fires when the *thread* that started us exits, which would kill
    workers whenever a short-lived thread created the pool.)
    """
    try:
        used = resource.getrusage(resource.RUSAGE_SELF)
        spent = used.ru_utime + used.ru_stime
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        soft = int(spent + seconds) + 2
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
    except (ValueError, OSError):
        pass


def _limit_resources(memory_limit_mb: int) -> None:
    try:
        limit = memory_limit_mb * 1024 * 1024
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError):
        pass


def _warm_up() -> None:
    """Imports (and exercises once) the symbolic stack before work arrives."""
    from jaxreason.tasks import grading_pool, math_symbolic

    grading_pool.IN_WORKER = True
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    logging.getLogger("latex2sympy2_extended").setLevel(logging.CRITICAL)
    # One comparison of each kind loads SymPy's lazily imported parts (sets, intervals,
    # matrices, relations, simplification) now rather than during the first items.
    for gold, pred in (
        ("\\frac{1}{2}", "0.5"),
        ("\\sqrt{8}", "2\\sqrt{2}"),
        ("\\{1, 2\\}", "\\{2, 1\\}"),
        ("(1, 2]", "(1, 2)"),
        ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
        ("x^2+2x+1", "(x+1)^2"),
        ("y = 2x", "2x"),
        ("10\\%", "0.1"),
    ):
        try:
            math_symbolic.math_verify_equal(gold, pred, 3)
        except Exception:
            pass


def _serve(incoming: Connection, outgoing: Connection) -> None:
    functions: dict[bytes, Callable[..., Any]] = {}
    while True:
        try:
            message = incoming.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        function_bytes, items, item_timeout_s = message
        function = functions.get(function_bytes)
        error = None
        if function is None:
            try:
                function = pickle.loads(function_bytes)
                functions.clear()  # keep one: a pool serves one task at a time
                functions[function_bytes] = function
            except Exception as exception:
                error = f"cannot load the grading function: {type(exception).__name__}: {exception}"
        for index, arguments in items:
            _cap_cpu_time(item_timeout_s)
            if error is not None:
                reply = (index, False, error[:300])
            else:
                try:
                    reply = (index, True, function(*arguments))
                except MemoryError:
                    reply = (index, False, "MemoryError")
                except BaseException as exception:  # noqa: BLE001 - report, never die
                    reply = (index, False, f"{type(exception).__name__}: {exception}"[:300])
            try:
                outgoing.send(reply)
            except (pickle.PicklingError, TypeError, AttributeError) as exception:
                outgoing.send((index, False, f"unpicklable result: {exception}"[:300]))


def main(argv: list[str]) -> None:
    read_fd, write_fd, memory_limit_mb = int(argv[1]), int(argv[2]), int(argv[3])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent; it stops us
    incoming = Connection(read_fd, writable=False)
    outgoing = Connection(write_fd, readable=False)
    _warm_up()
    _limit_resources(memory_limit_mb)
    outgoing.send("ready")
    _serve(incoming, outgoing)


if __name__ == "__main__":
    main(sys.argv)
