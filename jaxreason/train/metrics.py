"""Training metrics: a jsonl file and TensorBoard events in the workdir, a progress bar, and a
one-line summary every N steps; throughput and model FLOPs utilization (MFU).

Only process 0 writes. Every record in `metrics.jsonl` is one JSON object with a `step` and a
`kind` ("train", "eval", "event"), so a resumed run appends to the same file and readers take
the last record per (kind, step).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from typing import Any, Mapping

log = logging.getLogger(__name__)

# Dense bf16 peak FLOP/s per chip, matched against `jax.Device.device_kind` (lower case,
# first match wins; the more specific names come first).
PEAK_BF16_FLOPS: tuple[tuple[str, float], ...] = (
    ("h200", 989e12),
    ("h100", 989e12),  # SXM; the PCIe card is lower (756e12)
    ("a100", 312e12),
    ("tpu v6 lite", 918e12),
    ("tpu v6e", 918e12),
    ("tpu v5 lite", 197e12),
    ("tpu v5e", 197e12),
    ("tpu v5p", 459e12),
    ("tpu v5", 459e12),
    ("tpu v4", 275e12),
)


def peak_flops(device_kind: str) -> float | None:
    """The chip's dense bf16 peak FLOP/s, or None when unknown (CPUs)."""
    kind = device_kind.lower()
    for name, flops in PEAK_BF16_FLOPS:
        if name in kind:
            return flops
    return None


def mfu(flops_per_token: float, tokens_per_second: float, num_devices: int,
        device_kind: str) -> float | None:
    """Model FLOPs utilization: achieved model FLOP/s over the devices' bf16 peak."""
    peak = peak_flops(device_kind)
    if peak is None or tokens_per_second <= 0:
        return None
    return flops_per_token * tokens_per_second / (peak * num_devices)


def _clean(value: Any) -> Any:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return value
    if math.isnan(value) or math.isinf(value):
        return str(value)  # keep the jsonl valid JSON
    return value


class MetricsWriter:
    """Writes metrics of one run (jsonl + TensorBoard + tqdm + summary lines).

    total_steps: for the progress bar; summary_every: a logged one-line summary every N steps
    (0 = never); enabled: False on processes other than 0 (everything becomes a no-op).
    """

    def __init__(self, workdir: str, *, total_steps: int, start_step: int = 0,
                 summary_every: int = 10, enabled: bool = True, tensorboard: bool = True,
                 progress: bool = True) -> None:
        self.enabled = enabled
        self.summary_every = summary_every
        self.path = os.path.join(workdir, "metrics.jsonl")
        self._file = None
        self._tb = None
        self._bar = None
        if not enabled:
            return
        os.makedirs(workdir, exist_ok=True)
        self._file = open(self.path, "a", buffering=1)
        if tensorboard:
            from tensorboardX import SummaryWriter
            self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"), flush_secs=10)
        if progress:
            from tqdm.auto import tqdm
            self._bar = tqdm(total=total_steps, initial=start_step, unit="step",
                             dynamic_ncols=True, mininterval=1.0)

    def write(self, step: int, metrics: Mapping[str, Any], kind: str = "train") -> None:
        """One record; train records also advance the progress bar."""
        if not self.enabled:
            return
        record = {"kind": kind, "step": int(step), "time": round(time.time(), 3)}
        record.update({k: _clean(v) for k, v in metrics.items()})
        self._file.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for key, value in record.items():
                if key not in ("kind", "step", "time") and isinstance(value, float):
                    self._tb.add_scalar(f"{kind}/{key}", value, int(step))
        if kind == "train":
            if self._bar is not None:
                self._bar.update(max(0, int(step) - self._bar.n))
                self._bar.set_postfix(loss=f"{record.get('loss', float('nan')):.4g}",
                                      refresh=False)
            if self.summary_every and int(step) % self.summary_every == 0:
                self.summary(step, record)
        elif kind == "eval":
            self.summary(step, record)

    def summary(self, step: int, record: Mapping[str, Any]) -> None:
        keys = ("loss", "grad_norm", "learning_rate", "tokens_per_second", "step_time", "mfu",
                "accuracy")
        parts = [f"{record['kind']} step {step}"]
        for key in keys:
            value = record.get(key)
            if isinstance(value, float):
                parts.append(f"{key}={value:.4g}")
        line = " ".join(parts)
        if self._bar is not None:
            self._bar.write(line)
        else:
            log.info(line)

    def event(self, step: int, name: str, **fields: Any) -> None:
        """A non-metric event (start, resume, preemption, export ...)."""
        if not self.enabled:
            return
        self.write(step, {"event": name, **fields}, kind="event")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._file is not None:
            self._file.close()
            self._file = None


class Throughput:
    """Tokens/s, step time and MFU from wall time between consecutive finished steps."""

    def __init__(self, flops_per_token: float, num_devices: int, device_kind: str) -> None:
        self.flops_per_token = flops_per_token
        self.num_devices = num_devices
        self.device_kind = device_kind
        self._last: float | None = None

    def reset(self) -> None:
        """Forget the clock (after compilation, evaluation or checkpointing pauses)."""
        self._last = None

    def update(self, tokens: float) -> dict[str, float]:
        now = time.perf_counter()
        last, self._last = self._last, now
        if last is None:
            return {}
        dt = max(now - last, 1e-9)
        out = {"step_time": dt, "tokens_per_second": tokens / dt}
        u = mfu(self.flops_per_token, tokens / dt, self.num_devices, self.device_kind)
        if u is not None:
            out["mfu"] = u
        return out


def read_metrics(workdir: str, kind: str = "train") -> dict[int, dict[str, Any]]:
    """The last record per step of `kind` in `workdir/metrics.jsonl` (resumed runs append)."""
    out: dict[int, dict[str, Any]] = {}
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a kill
                continue
            if record.get("kind") == kind:
                out[int(record["step"])] = record
    return out
