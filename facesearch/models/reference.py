"""The reference encoder shipped inside the package: what `enroll` uses without ``--model``.

It is an ordinary model file written by ``facesearch train`` on ``fiw/train`` (its recipe and
validation figures are in its ``meta``, the command lines in the README), re-saved with fp16
weights by ``export_reference`` so the wheel stays small. Nothing is downloaded: the file is
package data.
"""

from __future__ import annotations

import os
from pathlib import Path

from facesearch.errors import ModelError
from facesearch.models.encoder import encoder_from_payload, read_model_file, save_encoder

REFERENCE_FILE = Path(__file__).with_name("reference.pt")
MAX_BYTES = 16 * 1024 * 1024
ENV_MODEL = "FACESEARCH_MODEL"


def default_model() -> Path:
    """The encoder a new gallery is bound to without ``--model``: ``$FACESEARCH_MODEL`` (a
    site's own encoder, or a crop encoder for photos that are already tight face crops),
    else the shipped reference."""
    chosen = os.environ.get(ENV_MODEL)
    return Path(chosen).expanduser() if chosen else reference_file()


def reference_file() -> Path:
    """The shipped model file; a clear error if this install lacks it."""
    if not REFERENCE_FILE.is_file():
        raise ModelError(
            f"the reference encoder {REFERENCE_FILE} is missing from this install; "
            "reinstall facesearch or pass --model"
        )
    return REFERENCE_FILE


def export_reference(source: str | Path, target: str | Path = REFERENCE_FILE, **meta: object) -> str:
    """Write ``source`` (a `facesearch train` model file) as the reference: fp16 weights, its
    meta kept (plus ``meta``, such as the credits of what it learnt from), its classifier
    dropped (the gallery does not use it). Returns the fingerprint."""
    payload = read_model_file(source)
    encoder, _ = encoder_from_payload(payload, source, "cpu")
    fp = save_encoder(encoder, target, {**payload["meta"], "exported_from": Path(source).name, **meta}, half=True)
    size = Path(target).stat().st_size
    if size > MAX_BYTES:
        Path(target).unlink()
        raise ModelError(f"{source}: {size / 2**20:.1f} MB in fp16, over the {MAX_BYTES / 2**20:.0f} MB limit")
    return fp
