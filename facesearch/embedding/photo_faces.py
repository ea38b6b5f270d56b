"""Every face of one photo, embedded: what a query searches with, what ``facesearch embed``
gives out, and what ``facesearch verify`` compares. One way from a photo's bytes to its faces'
vectors, so the three agree to the last digit."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facesearch.embedding.encoders import FaceEncoder
from facesearch.embedding.face_finding.base import Face
from facesearch.embedding.face_finding.prepare import FacePreparer
from facesearch.embedding.imaging import decode, read_bytes
from facesearch.errors import InputError


@dataclass(frozen=True)
class EmbeddedFace:
    """One face of a photo: where it is (``face`` None: the photo was taken whole) and its
    unit embedding."""

    box: tuple[float, float, float, float]
    face: Face | None
    embedding: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        where = self.face.to_dict() if self.face else {
            "box": [float(v) for v in self.box], "landmarks": None, "detection_score": None}
        return {**where, "embedding": [float(v) for v in self.embedding]}  # exact: float32 -> float -> float32


def embed_photo(
    encoder: FaceEncoder, preparer: FacePreparer, photo: str | Path | bytes, source: str | Path | None = None,
) -> list[EmbeddedFace]:
    """Every face of ``photo`` (a file, or its bytes named ``source``) the preparer finds,
    largest first, with its embedding; an ImageError naming the photo when it holds none."""
    data = photo if isinstance(photo, bytes) else read_bytes(photo)
    name = source if source is not None else (photo if not isinstance(photo, bytes) else "<upload>")
    image = decode(data, name, draft_side=preparer.draft_side)
    prepared = preparer.prepare(image, name)
    vectors = encoder.embed_faces(np.stack([f.pixels.transpose(2, 0, 1) for f in prepared.faces]))
    whole = (0.0, 0.0, float(image.width), float(image.height))
    return [EmbeddedFace(f.face.box if f.face else whole, f.face, v) for f, v in zip(prepared.faces, vectors)]


def read_embeddings(path: str | Path, dim: int) -> np.ndarray:
    """Query vectors from a file: ``.npy`` (D,) or (N, D), or JSON: a list of numbers, a list of
    such lists, or ``facesearch embed``'s output (every face's embedding). Each must have
    ``dim`` finite values and unit length (what the encoder gives): anything else is refused
    with the expected dimension."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".npy":
            raw: Any = np.load(path, allow_pickle=False)
        else:
            raw = _json_vectors(path)
        vectors = np.asarray(raw, dtype=np.float64)
    except FileNotFoundError:
        raise InputError(f"{path}: no such embedding file") from None
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(f"{path}: not an embedding ({exc}); expected {dim} numbers, as JSON or .npy") from None
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    if vectors.ndim != 2 or vectors.shape[1] != dim or len(vectors) == 0:
        raise InputError(f"{path}: embeddings of shape {tuple(vectors.shape)}; this gallery's encoder gives {dim} numbers a face")
    if not np.isfinite(vectors).all():
        raise InputError(f"{path}: an embedding holds NaN or infinite values (expected {dim} finite numbers)")
    norms = np.linalg.norm(vectors, axis=1)
    if not np.allclose(norms, 1.0, atol=1e-3):
        worst = float(norms[np.argmax(np.abs(norms - 1.0))])
        raise InputError(f"{path}: an embedding has length {worst:.4f}, not 1 (the encoder's are unit vectors of {dim} numbers)")
    return vectors.astype(np.float32)  # as given: the encoder's own vectors query as its photos do


def _json_vectors(path: Path) -> Any:
    import json

    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and isinstance(data.get("faces"), list):  # facesearch embed's output
        return [face["embedding"] for face in data["faces"]]
    if isinstance(data, dict) and "embedding" in data:
        return data["embedding"]
    return data


@dataclass(frozen=True)
class Verdict:
    """1:1: are the faces of two photos the same person at ``threshold``?"""

    score: float
    threshold: float
    threshold_source: str
    faces: tuple[EmbeddedFace, EmbeddedFace]

    @property
    def same(self) -> bool:
        return self.score >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {"same": self.same, "score": self.score, "threshold": self.threshold,
                "threshold_source": self.threshold_source,
                "boxes": [[round(float(v), 1) for v in f.box] for f in self.faces]}


def pick(faces: list[EmbeddedFace], number: int, source: str | Path) -> EmbeddedFace:
    """The ``number``-th largest face (0: the largest), or an error naming the photo."""
    if not 0 <= number < len(faces):
        raise InputError(f"{source}: has {len(faces)} face(s); there is no face {number} (0 is the largest)")
    return faces[number]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """The score bench --pairs gives a pair: the cosine of the two unit embeddings."""
    value = float(np.dot(np.asarray(a, np.float32), np.asarray(b, np.float32)))
    return value if math.isfinite(value) else -1.0
