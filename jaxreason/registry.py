"""One registry pattern for everything a config chooses by name: losses, advantage estimators,
rewards, tasks, trainers, data generators, pipeline stages.

A `Registry` maps names to objects (functions, classes, or "module:attribute" import paths
resolved on first use, so the launcher imports only what it runs). Registering a name twice
with a different object is an error, so two modules can never silently shadow each other.
Pure Python: importable from `jaxreason.tasks`, which never imports JAX.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Named objects of one kind (`kind` names it in error messages)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Any] = {}

    def register(self, name: str, target: T | str | None = None) -> Any:
        """`registry.register("x", obj)`, `registry.register("x", "pkg.mod:attr")` (lazy), or
        `@registry.register("x")` as a decorator. A second, different object under the same
        name raises ValueError."""
        if target is None:
            def decorate(obj: T) -> T:
                self.register(name, obj)
                return obj
            return decorate
        existing = self._entries.get(name)
        if existing is not None and existing is not target and existing != target:
            raise ValueError(f"{self.kind} {name!r} is already registered ({existing!r})")
        self._entries[name] = target
        return target

    def get(self, name: str) -> T:
        """The object registered as `name` (a lazy import path is imported now)."""
        if name not in self._entries:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {self.names()}")
        entry = self._entries[name]
        if isinstance(entry, str) and ":" in entry:
            module, attribute = entry.split(":", 1)
            entry = getattr(importlib.import_module(module), attribute)
        return entry

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

