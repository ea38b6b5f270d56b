"""Face encoder networks: backbones (registry), embedding heads, the encoder and its file.

The names below are loaded on first use (PEP 562), so that ``facesearch.models.reference``
(which the inference path asks for the shipped encoder) does not import torch.
"""

from __future__ import annotations

from facesearch import lazy

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


__getattr__ = lazy.exports(__name__, _EXPORTS)
