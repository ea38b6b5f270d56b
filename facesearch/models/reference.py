"""The reference encoder shipped inside the package: what `enroll` uses without ``--model``.

It is an ordinary model file written by ``facesearch train`` (its recipe and validation
figures are in its ``meta``; ``scripts/release_reference.py`` writes it), shipped twice: ``reference.pt``
with fp16 weights (to fine-tune from, ``train --init``) and ``reference.onnx`` + sidecar,
exported from it and checked against it, which new galleries use, so enroll and query run
on onnxruntime without torch. Nothing is downloaded: both are package data.
"""

from __future__ import annotations

import os
from pathlib import Path

from facesearch.errors import ModelError

REFERENCE_FILE = Path(__file__).with_name("reference.pt")
REFERENCE_ONNX = Path(__file__).with_name("reference.onnx")
MAX_BYTES = 16 * 1024 * 1024
ENV_MODEL = "FACESEARCH_MODEL"


def default_model() -> Path:
    """The encoder a new gallery is bound to without ``--model``: ``$FACESEARCH_MODEL`` (a
    site's own encoder, or a crop encoder for photos that are already tight face crops),
    else the shipped reference in its ONNX form."""
    chosen = os.environ.get(ENV_MODEL)
    return Path(chosen).expanduser() if chosen else reference_file(onnx=True)


def reference_file(onnx: bool = False) -> Path:
    """The shipped model file (torch, or its ONNX export); a clear error if this install lacks it."""
    path = REFERENCE_ONNX if onnx else REFERENCE_FILE
    if not path.is_file():
        raise ModelError(f"the reference encoder {path} is missing from this install; reinstall facesearch or pass --model")
    return path

