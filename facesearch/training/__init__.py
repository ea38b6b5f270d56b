"""Training the face encoder: the run's data, the two-phase loop, checkpoints and validation.
``train`` (``launch``) is the entry point: one process or several.

The names below are loaded on first use (PEP 562), so that ``facesearch.training.config``
(which the CLI reads to build the ``train`` command) does not import torch.
"""

from __future__ import annotations

from facesearch import lazy

_EXPORTS = {
    "TrainConfig": "config",
    "train": "launch",
    "Trainer": "loop",
    "EpochRecord": "records",
    "TrainReport": "records",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy.exports(__name__, _EXPORTS)
