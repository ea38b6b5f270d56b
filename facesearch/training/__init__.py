"""Training the face encoder: the run's data, the two-phase loop, checkpoints and validation.
``train`` (``launch``) is the entry point: one process or several.

The names below are loaded on first use (PEP 562), so that ``facesearch.training.config``
(which the CLI reads to build the ``train`` command) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrainConfig": "config",
    "train": "launch",
    "Trainer": "loop",
    "EpochRecord": "records",
    "TrainReport": "records",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
