"""1:1 verification on LFW "View 2" pairs files, as CFP's ``pairs.txt``.

Format: a first line ``folds<TAB>n``; then, per fold, ``n`` same-person lines
``Name<TAB>i<TAB>j`` and ``n`` different-person lines ``Name1<TAB>i<TAB>Name2<TAB>j``. Image
``i`` of ``Name`` is ``DIR/Name/Name_<i:04d>.jpg``. Each image is embedded once, however
many pairs use it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facesearch.embedding.loader import face_loader
from facesearch.embedding.encoders import FaceEncoder
from facesearch.errors import InputError
from facesearch.fileio import read_text
from facesearch.embedding.face_finding.prepare import FacePreparer
from facesearch.evaluation.metrics import verification_report


@dataclass
class Pairs:
    """Pairs as indices into ``images``, with the same-person flag and the fold of each."""

    images: list[Path]
    left: np.ndarray
    right: np.ndarray
    same: np.ndarray
    folds: np.ndarray

    def __len__(self) -> int:
        return len(self.same)

    def scores(self, vectors: np.ndarray) -> np.ndarray:
        """Cosine similarity of each pair, given the L2-normalised embedding of every image."""
        return np.einsum("ij,ij->i", vectors[self.left], vectors[self.right])


def _image_path(root: Path, name: str, number: str, where: str) -> Path:
    try:
        return root / name / f"{name}_{int(number):04d}.jpg"
    except ValueError:
        raise InputError(f"{where}: image number {number!r} is not an integer") from None


def read_pairs(pairs_file: str | Path, images_dir: str | Path) -> Pairs:
    """Parse a pairs file; refuses malformed lines and pairs whose images are missing."""
    pairs_file, root = Path(pairs_file), Path(images_dir)
    if not pairs_file.is_file():
        raise InputError(f"pairs file {pairs_file} not found")
    if not root.is_dir():
        raise InputError(f"pairs images folder {root} not found")
    lines = [line.rstrip("\r\n") for line in read_text(pairs_file).splitlines()]
    lines = [line for line in lines if line.strip()]
    try:
        folds, per_fold = (int(x) for x in lines[0].split())
    except (IndexError, ValueError):
        raise InputError(f"{pairs_file}: first line must be '<folds> <pairs per kind>'") from None
    if folds < 2 or per_fold < 1:
        raise InputError(f"{pairs_file}: needs at least 2 folds (thresholds are chosen on the other folds)")
    expected = folds * per_fold * 2
    if len(lines) - 1 != expected:
        raise InputError(f"{pairs_file}: header promises {expected} pairs, file has {len(lines) - 1}")
    index: dict[Path, int] = {}
    left, right, same = [], [], []
    for number, line in enumerate(lines[1:], start=2):
        where = f"{pairs_file}:{number}"
        fields = line.split("\t") if "\t" in line else line.split()
        if len(fields) == 3:
            a, b = _image_path(root, fields[0], fields[1], where), _image_path(root, fields[0], fields[2], where)
        elif len(fields) == 4:
            a, b = _image_path(root, fields[0], fields[1], where), _image_path(root, fields[2], fields[3], where)
        else:
            raise InputError(f"{where}: expected 3 or 4 tab-separated fields, got {len(fields)}")
        for path in (a, b):
            if path not in index:
                if not path.is_file():
                    raise InputError(f"{where}: image {path} not found")
                index[path] = len(index)
        left.append(index[a])
        right.append(index[b])
        same.append(len(fields) == 3)
    position = np.arange(expected)
    return Pairs(
        images=list(index),
        left=np.array(left),
        right=np.array(right),
        same=np.array(same),
        folds=position // (2 * per_fold),
    )


def pair_vectors(
    encoder: FaceEncoder,
    pairs: Pairs,
    preparer: FacePreparer | None = None,
    batch_size: int = 64,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, int]:
    """(the embedding of every image of the pairs, how many had no face found and were
    taken whole); ``preparer``: how photos become faces [default: tight crops]."""
    preparer = preparer or FacePreparer(encoder.preprocessing.with_detection(False))
    vectors = np.zeros((len(pairs.images), encoder.dim), np.float32)
    done = no_face = 0
    for batch in face_loader(pairs.images, preparer, batch_size, workers):
        if batch.failures:
            position, reason = batch.failures[0]
            raise InputError(f"{pairs.images[position]}: {reason}")
        vectors[batch.positions] = encoder.embed_faces(batch.images)
        no_face += sum(1 for found in batch.found if found == 0)
        done += len(batch.positions)
        if progress:
            progress(done, len(pairs.images))
    return vectors, no_face


def pair_scores(
    encoder: FaceEncoder, pairs: Pairs, batch_size: int = 64, workers: int | None = None
) -> np.ndarray:
    """Cosine similarity of each pair's two embeddings (the index's inner product), on
    tight crops."""
    return pairs.scores(pair_vectors(encoder, pairs, None, batch_size, workers)[0])


def evaluate_pairs(
    encoder: FaceEncoder, pairs: Pairs, batch_size: int = 64, workers: int | None = None
) -> dict[str, object]:
    """ROC-AUC, 10-fold accuracy and TAR at FAR of ``encoder`` on ``pairs`` (tight crops)."""
    return verification_report(pair_scores(encoder, pairs, batch_size, workers), pairs.same, pairs.folds)
