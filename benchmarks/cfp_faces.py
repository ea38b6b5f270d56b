"""cfp-dev's photos as the accuracy benchmarks read them: each photo's largest face (MTCNN and
the encoder's alignment; the whole photo when no face is found), its embedding and its
quality. Cached in the system's temp folder by the encoder's fingerprint, so that
clustering.py, quality.py and second_teacher.py embed the 3,481 photos once per encoder.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CFP = ROOT.parent / "shared" / "datasets" / "cfp-dev"
SFACE = ROOT.parent / "shared" / "models" / "sface" / "face_recognition_sface_2021dec.onnx"


def photos() -> list[Path]:
    return sorted((CFP / "images").glob("*/*.jpg"))


def people_of(files: list[Path]) -> np.ndarray:
    return np.array([f.parent.name for f in files])


def frontal_of(files: list[Path]) -> np.ndarray:
    """cfp-dev numbers each person's 10 frontal photos first, then the profiles."""
    return np.array([int(f.stem.rsplit("_", 1)[1]) <= 10 for f in files])


def largest_faces(model: Path) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """(photos, embedding of each one's largest face, its quality)."""
    from facesearch.embedding.encoders import load_model
    from facesearch.embedding.face_finding.prepare import preparer_for
    from facesearch.embedding.loader import face_loader

    encoder, fingerprint = load_model(model, "cpu")
    files = photos()
    cache = Path(tempfile.gettempdir()) / f"facesearch-cfp-faces-{hashlib.sha256(fingerprint.encode()).hexdigest()[:12]}.npz"
    if cache.exists():
        saved = np.load(cache)
        return files, saved["vectors"], saved["quality"]
    preparer = preparer_for(encoder.preprocessing, "mtcnn", fallback=True)
    vectors = np.zeros((len(files), encoder.dim), np.float32)
    quality = np.zeros(len(files), np.float32)
    for batch in face_loader(files, preparer, 64):
        if batch.images is not None:
            vectors[batch.positions] = encoder.embed_faces(batch.images)
            quality[batch.positions] = batch.qualities
    np.savez(cache, vectors=vectors, quality=quality)
    return files, vectors, quality
