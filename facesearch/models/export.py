"""``facesearch export``: a trained model file as an ONNX encoder with its sidecar.

The ONNX graph is the network alone (normalised pixels in, raw embedding out); what the
runtime must do around it (face preparation, mean/std, flip, L2 normalisation) is in the
sidecar, so the exported file answers exactly as the torch one through ``OnnxEncoder``. Every
export is checked before it is kept: both runtimes embed the same faces and must agree.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import numpy as np

from facesearch.errors import InputError, ModelError
from facesearch.fileio import atomic_write

MIN_COSINE = 0.9999
"""Torch and ONNX embeddings of the same face must agree at least this well."""


def export_onnx(model: str | Path, out: str | Path, check: str | Path | None = None) -> dict[str, Any]:
    """Write ``out`` (ONNX, one file, dynamic batch) and ``out.json``; returns what was
    written and how well the two runtimes agree (random faces, and ``check``'s photos)."""
    import torch

    from facesearch.embedding.encoders import is_onnx
    from facesearch.models.encoder import encoder_from_payload, read_model_file
    from facesearch.embedding.onnx_runtime import OnnxEncoder, write_sidecar

    out = Path(out)
    if is_onnx(model):
        raise InputError(f"{model}: already an ONNX file (export takes a model file from `facesearch train`)")
    if not is_onnx(out):
        raise InputError(f"{out}: the ONNX file to write must end in .onnx")
    payload = read_model_file(model)
    encoder, fingerprint = encoder_from_payload(payload, model, "cpu")
    size = encoder.config.input_size
    example = torch.zeros(2, 3, size, size)
    batch = torch.export.Dim("batch", min=1, max=4096)
    with contextlib.redirect_stdout(sys.stderr):  # the exporter reports progress on stdout
        program = torch.onnx.export(
            encoder.float().eval(), (example,), input_names=["data"], output_names=["embedding"],
            dynamic_shapes={"x": {0: batch}}, external_data=False, dynamo=True,
        )
    with atomic_write(out) as handle:
        handle.write(program.model_proto.SerializeToString())
    credits = {k: payload["meta"][k] for k in ("credits", "teacher") if k in payload.get("meta", {})}
    sidecar = write_sidecar(
        out, encoder.preprocessing, encoder.flip, name=Path(model).stem, exported_from=fingerprint, **credits
    )
    exported = OnnxEncoder(out)
    agreement = _agreement(encoder, exported, _random_faces(size))
    report: dict[str, Any] = {"onnx": str(out), "sidecar": str(sidecar), "fingerprint": exported.fingerprint,
                              "random_min_cosine": agreement["min_cosine"]}
    if check is not None:
        report["check"] = _agreement(encoder, exported, _photo_faces(check, exported))
    worst = min(agreement["min_cosine"], report.get("check", agreement)["min_cosine"])
    if worst < MIN_COSINE:
        out.unlink(missing_ok=True)
        sidecar.unlink(missing_ok=True)
        raise ModelError(f"{model}: the ONNX export disagrees with torch (cosine {worst:.6f} < {MIN_COSINE}); nothing written")
    return report


def _agreement(torch_encoder: Any, onnx_encoder: Any, faces: np.ndarray) -> dict[str, Any]:
    a = torch_encoder.embed_faces(faces)
    b = onnx_encoder.embed_faces(faces)
    cosines = np.sum(a * b, axis=1)
    return {"faces": len(faces), "min_cosine": float(cosines.min()), "mean_cosine": float(cosines.mean())}


def _random_faces(size: int, count: int = 8) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (count, 3, size, size), dtype=np.uint8)


def _photo_faces(folder: str | Path, encoder: Any, limit: int = 256) -> np.ndarray:
    """The largest face of up to ``limit`` photos below ``folder``, prepared for ``encoder``."""
    from facesearch.embedding.loader import face_loader
    from facesearch.embedding.face_finding.prepare import preparer_for
    from facesearch.embedding.imaging import is_candidate

    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and is_candidate(p))[:limit]
    faces = [b.images for b in face_loader(files, preparer_for(encoder.preprocessing, fallback=True), 64, 0)
             if b.images is not None]
    if not faces:
        raise InputError(f"{folder}: no photos to check the export on")
    return np.concatenate(faces)
