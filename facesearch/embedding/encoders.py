"""Any encoder the project can run, behind one interface: our torch model files (``.pt``)
and ONNX files with their sidecar (``.onnx`` + ``.onnx.json``).

The gallery, bench and the CLI only use ``FaceEncoder``; which runtime sits behind it is
decided here, by the file, and nowhere else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from facesearch.errors import ModelError
from facesearch.embedding.preprocessing import Preprocessing

ONNX_SUFFIX = ".onnx"


class FaceEncoder(Protocol):
    """Faces in (uint8 (N, 3, S, S), prepared as ``preprocessing`` says), unit vectors out."""

    preprocessing: Preprocessing
    dim: int
    flip: bool
    calibration: dict[str, Any] | None  # the threshold at a stated FPIR, when the file states one

    def embed_faces(self, images: Any) -> np.ndarray: ...

    def describe(self) -> dict[str, Any]: ...


def is_onnx(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ONNX_SUFFIX


def load_model(path: str | Path, device: str | None = None, flip: bool | None = None) -> tuple[FaceEncoder, str]:
    """(encoder ready for inference, fingerprint) of a model file of either kind; ``flip``
    sets flip test-time augmentation (None: as the file says)."""
    if is_onnx(path):
        from facesearch.embedding.onnx_runtime import OnnxEncoder

        encoder = OnnxEncoder(path, flip)
        return encoder, encoder.fingerprint
    _need_torch(path)
    from facesearch.models.encoder import load_encoder

    return load_encoder(path, device, flip)


def _need_torch(path: str | Path) -> None:
    """Torch model files need torch, which a plain install leaves out (it is the ``train`` extra)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ModelError(
            f"{path}: a torch model file, and torch is not installed here. Install it "
            "(pip install 'facesearch[train]'), or use the model's ONNX form, which needs no torch: "
            "`facesearch export MODEL --onnx MODEL.onnx` where torch is installed"
        ) from None


def model_copy_name(source: str | Path, fingerprint: str) -> str:
    """The name of a gallery's copy of its model file in HOME/models/."""
    return fingerprint + (ONNX_SUFFIX if is_onnx(source) else ".pt")


def copy_model(source: str | Path, target: Path, flip: bool | None = None) -> str:
    """Copy a model file (ONNX: with its sidecar, flip set) atomically; returns its fingerprint."""
    if not is_onnx(source):
        _need_torch(source)
        from facesearch.models.encoder import copy_model_file

        return copy_model_file(source, target, flip)
    from facesearch.fileio import atomic_write
    from facesearch.embedding.onnx_runtime import onnx_fingerprint, read_sidecar, sidecar_extra, write_sidecar

    sidecar = read_sidecar(source)  # the network itself was checked when the gallery loaded it
    preprocessing, flip = sidecar["preprocessing"], sidecar["flip"] if flip is None else flip
    model_bytes = Path(source).read_bytes()
    write_sidecar(target, preprocessing, flip, **sidecar_extra(sidecar))
    with atomic_write(target) as handle:
        handle.write(model_bytes)
    return onnx_fingerprint(model_bytes, preprocessing, flip)
