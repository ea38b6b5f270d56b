"""The reference encoder shipped inside the package: what `enroll` uses without ``--model``.

It is an ordinary model file written by ``facesearch train`` (its recipe and validation
figures are in its ``meta``, the command line in the README), shipped twice: ``reference.pt``
with fp16 weights (to fine-tune from, ``train --init``) and ``reference.onnx`` + sidecar,
exported from it and checked against it, which new galleries use, so enroll and query run
on onnxruntime without torch. Nothing is downloaded: both are package data.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

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


def export_reference(
    source: str | Path, target: str | Path = REFERENCE_FILE, check: str | Path | None = None, **meta: object
) -> dict[str, Any]:
    """Write ``source`` (a `facesearch train` model file) as the reference: fp16 weights, its
    meta kept (plus ``meta``, such as the credits of what it learnt from), its classifier
    dropped (the gallery does not use it); then its ONNX form beside it (``check``: photos
    the two must agree on, as `facesearch export --check`). Returns both fingerprints."""
    from facesearch.models.export import export_onnx
    from facesearch.models.encoder import encoder_from_payload, read_model_file, save_encoder

    target = Path(target)
    payload = read_model_file(source)
    encoder, _ = encoder_from_payload(payload, source, "cpu")
    fp = save_encoder(encoder, target, {**payload["meta"], "exported_from": Path(source).name, **meta}, half=True)
    size = target.stat().st_size
    if size > MAX_BYTES:
        target.unlink()
        raise ModelError(f"{source}: {size / 2**20:.1f} MB in fp16, over the {MAX_BYTES / 2**20:.0f} MB limit")
    exported = export_onnx(target, target.with_suffix(".onnx"), check)
    return {**exported, "fingerprint": fp, "onnx_fingerprint": exported["fingerprint"]}
