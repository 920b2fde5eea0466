"""Checkpoints of a run: train state, data iterator position and config, with Orbax.

`<workdir>/checkpoints/<step>/` holds three items written by one `CheckpointManager.save`:
`state` (the TrainState pytree, each process writing its shards), `data` (Grain iterator state,
one JSON file per process, so every host resumes its own shard) and `config` (the run's
config as JSON). Saves are asynchronous: the step loop continues while the arrays are written;
a checkpoint becomes visible only once complete, so a run killed mid-save resumes from the
previous one. Restoring needs the abstract state (shapes, dtypes, shardings): optax's state
then comes back as its own NamedTuples, placed on the mesh.

`PreemptionGuard` turns SIGTERM (what TPU VMs and most schedulers send before taking a machine
away) into "save at the next step boundary, then stop". Multi-process runs use JAX's
preemption sync point instead, so that every host stops at the same step.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from typing import Any

import jax
import orbax.checkpoint as ocp

import grain

from jaxreason.train.state import TrainState
from jaxreason.train.trainable import is_partial, trainable, with_trainable

log = logging.getLogger(__name__)


class Checkpointer:
    """Saves and restores (state, data iterator, config) under `directory`."""

    def __init__(self, directory: str, *, max_to_keep: int | None = 3,
                 async_save: bool = True) -> None:
        self.directory = os.path.abspath(directory)
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True, cleanup_tmp_directories=True,
            enable_async_checkpointing=async_save)
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self.manager.all_steps())

    def save(self, step: int, state: TrainState, data_iterator: Any | None,
             config: dict[str, Any]) -> bool:
        """Start saving (asynchronously); returns whether a save was started. Only the
        trainable parameters are saved (a LoRA model's adapters, not its frozen base)."""
        saved = {**state.as_dict(), "params": trainable(state.params)}
        items: dict[str, Any] = {
            "state": ocp.args.StandardSave(saved),
            "config": ocp.args.JsonSave(config),
        }
        if data_iterator is not None:
            items["data"] = grain.checkpoint.CheckpointSave(data_iterator)
        return self.manager.save(int(step), args=ocp.args.Composite(**items), force=True)

    def restore(self, step: int, target: TrainState, data_iterator: Any | None,
                base: Any = None) -> tuple[TrainState, dict[str, Any]]:
        """(state, saved config) of `step`; `data_iterator` is set to its saved position.

        target: abstract TrainState (ShapeDtypeStructs with shardings, `state.abstract_state`).
        base: with a LoRA model, parameters holding its frozen base (the checkpoint holds
        only the adapters); ignored otherwise.
        """
        partial = is_partial(target.params)
        if partial and base is None:
            raise ValueError("this checkpoint holds LoRA adapters only: restoring it needs the "
                             "base model's parameters (base=...)")
        items: dict[str, Any] = {
            "state": ocp.args.StandardRestore({**target.as_dict(),
                                               "params": trainable(target.params)}),
            "config": ocp.args.JsonRestore(),
        }
        if data_iterator is not None:
            items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
        restored = self.manager.restore(int(step), args=ocp.args.Composite(**items))
        state = dict(restored["state"])
        if partial:
            state["params"] = with_trainable(base, state["params"])
        return TrainState.from_dict(state), restored["config"]

    def saved_config(self, step: int) -> dict[str, Any]:
        """The config stored with `step` (without touching arrays)."""
        path = os.path.join(self.directory, str(step), "config", "metadata")
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)
        restored = self.manager.restore(int(step), args=ocp.args.Composite(
            config=ocp.args.JsonRestore()))
        return restored["config"]

    def wait(self) -> None:
        """Block until the pending asynchronous save is on disk."""
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


class PreemptionGuard:
    """Notices a preemption request; `requested(step)` is polled at every step boundary.

    Single process: a SIGTERM handler sets a flag (installed only from the main thread; the
    previous handler is restored by `close`). Several processes: JAX's preemption sync point
    (the runtime catches the signal and the hosts agree on the step), via Orbax.
    """

    def __init__(self, manager: ocp.CheckpointManager) -> None:
        self._manager = manager
        self._event = threading.Event()
        self._previous: Any = None
        self._multi = jax.process_count() > 1
        if not self._multi and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        log.warning("SIGTERM received: saving a checkpoint at the next step and stopping")
        self._event.set()

    def requested(self, step: int) -> bool:
        if self._multi:
            return bool(self._manager.reached_preemption(int(step)))
        return self._event.is_set()

    def close(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None
