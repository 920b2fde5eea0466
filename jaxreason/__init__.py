"""jaxreason: JAX-native post-training that teaches language models to reason.

Heavy submodules (the model, JAX) load on first use, so `jaxreason.tasks` stays importable
without JAX.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Model": "jaxreason.model",
    "ModelConfig": "jaxreason.model",
    "create_model": "jaxreason.model",
    "load_pretrained": "jaxreason.model",
    "save_pretrained": "jaxreason.model",
    "Sampler": "jaxreason.sampling",
    "SamplingParams": "jaxreason.sampling",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'jaxreason' has no attribute {name!r}")


__all__ = sorted(_LAZY)
