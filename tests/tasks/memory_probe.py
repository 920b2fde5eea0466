"""Jobs for grading-pool workers that measure the address-space cap from inside the worker.

A module of its own (not a test file) so that a worker process can import the functions by
name; the worker's PYTHONPATH is the test process's `sys.path`.
"""

from __future__ import annotations

CHUNK_MB = 32


def status_mb(field: str, pid: str = "self") -> float:
    """`VmPeak` (peak address space), `VmHWM` (peak resident memory), ... of a process, in MB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def grow_until_refused(ceiling_mb: int) -> dict:
    """Allocates and writes 32 MB blocks until an allocation fails or `ceiling_mb` is held (a
    safety stop, so a missing cap cannot exhaust the machine); returns what happened."""
    blocks = []
    refused = False
    try:
        while (len(blocks) + 1) * CHUNK_MB <= ceiling_mb:
            blocks.append(b"\x01" * (CHUNK_MB * 1024 * 1024))  # written, so resident
    except MemoryError:
        refused = True
    held_mb = len(blocks) * CHUNK_MB
    peak = {"VmPeak": status_mb("VmPeak"), "VmHWM": status_mb("VmHWM")}
    del blocks
    return {"refused": refused, "held_mb": held_mb, **peak}


def grow_without_limit() -> int:
    """Keeps allocating (written blocks) until the process is stopped; never returns normally
    under a cap. A 6 GB safety stop keeps an uncapped worker from exhausting the machine."""
    blocks = []
    while len(blocks) * CHUNK_MB < 6 * 1024:
        blocks.append(b"\x01" * (CHUNK_MB * 1024 * 1024))
    return len(blocks) * CHUNK_MB
