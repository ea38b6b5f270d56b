"""Face encoder networks: backbones (registry), embedding heads, the encoder and its file.

The names below are loaded on first use (PEP 562), so that ``facesearch.models.reference``
(which the inference path asks for the shipped encoder) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "create_backbone": "backbones",
    "list_backbones": "backbones",
    "register": "backbones",
    "Encoder": "encoder",
    "EncoderConfig": "encoder",
    "build_encoder": "encoder",
    "copy_model_file": "encoder",
    "encoder_fingerprint": "encoder",
    "load_encoder": "encoder",
    "save_encoder": "encoder",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
