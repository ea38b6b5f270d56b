"""The training run's faces when they are prepared (aligned) or taught: the labelled folder's
photos, the unlabelled folders' photos and the validation photos, all through one
``FaceCache``, with the teacher's targets for every training face.

Training photos in which the detector finds no face are left out (an aligned encoder never
sees a whole photo at query time either) and counted; validation photos with no face found
stand in whole, as ``bench`` answers them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from facesearch.errors import InputError
from facesearch.embedding.face_finding.prepare import FacePreparer
from facesearch.embedding.imaging import is_candidate
from facesearch.models.encoder import preprocessing_of
from facesearch.progress import Progress
from facesearch.training.config import TrainConfig
from facesearch.training.labelled import Sample
from facesearch.training.distill import load_teacher
from facesearch.training.face_sets import FaceSet, TrainingData
from facesearch.training.face_cache import FaceCache, default_cache_path, preparation_key

log = logging.getLogger(__name__)


def cache_folder() -> Path:
    """Where caches go without ``--face-cache``: the user's cache folder, so every run on the
    same photos (another recipe, another output) reuses them."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "facesearch"


def unlabelled_files(folder: str | Path) -> list[Path]:
    """Every candidate image below ``folder`` (at any depth); a folder with none is an error."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"--unlabelled {folder}: no such folder")
    files = sorted(p for p in root.rglob("*") if p.is_file() and is_candidate(p))
    if not files:
        raise InputError(f"--unlabelled {folder}: no images found")
    return files


def load_prepared_data(
    config: TrainConfig,
    names: list[str],
    train_samples: Sequence[Sample],
    heldout_samples: Sequence[Sample],
    workers: int,
    progress: Progress,
) -> TrainingData:
    encoder = config.encoder_config()
    preprocessing = preprocessing_of(encoder)
    key = preparation_key(preprocessing, config.detector)
    path = Path(config.face_cache) if config.face_cache else default_cache_path(key, cache_folder())
    cache = FaceCache.open(path, key)
    # Training photos include small ones (FER2013's 48 px faces): looked for from MTCNN's
    # 20 px, as the face cache's key (the detector's revision) has always meant.
    training = FacePreparer(preprocessing, config.detector, fallback=True, smallest_face=0)
    side = encoder.input_size

    # (file, cache row, class or -1) of every training face; files of equal content share a row.
    found = cache.add_files([p for p, _ in train_samples], training, workers, progress)
    skipped = list(found.skipped)
    entries = [(p, r, lab) for (p, lab), r in zip(train_samples, found.rows) if r is not None]
    for folder in config.unlabelled:
        files = unlabelled_files(folder)
        found = cache.add_files(files, training, workers, progress)
        skipped += found.skipped
        if not found.kept():
            raise InputError(f"--unlabelled {folder}: none of its files could be read as an image")
        entries += [(p, r, -1) for p, r in zip(files, found.rows) if r is not None]
    cache.save()  # the preparation is the slow part: keep it even if the teacher fails
    with_face = [e for e in entries if not preprocessing.detect or int(cache.found[e[1]]) != 0]
    no_face = len(entries) - len(with_face)
    if no_face:
        log.warning("%d training photos with no face found are left out", no_face)
    if not with_face:
        raise InputError(f"{config.data}: no training photo with a face found")
    rows = [r for _, r, _ in with_face]
    index = torch.tensor(rows)
    train = FaceSet([p for p, _, _ in with_face], torch.tensor([lab for _, _, lab in with_face]), side, cache.images[index])
    fingerprint = None
    if config.teacher:
        teacher, fingerprint = load_teacher(config.teacher, preprocessing)
        targets = cache.teacher_targets(teacher, fingerprint, rows, progress)
        train.targets = {view: values[index] for view, values in targets.items()}
        cache.save()

    def faces(paths: Sequence[Path], labels: Sequence[int] | None = None) -> FaceSet:
        found = cache.add_files(list(paths), training, workers, progress)
        cache.save()
        for file, reason in found.skipped:
            log.warning("skipping %s: %s", file, reason)
        kept = [(p, r, lab) for p, r, lab in zip(paths, found.rows, labels or [-1] * len(paths)) if r is not None]
        at = torch.tensor([r for _, r, _ in kept], dtype=torch.long)
        return FaceSet([p for p, _, _ in kept], torch.tensor([lab for _, _, lab in kept]), side, cache.images[at])

    heldout = faces([p for p, _ in heldout_samples], [label for _, label in heldout_samples])
    log.info(
        "%d people, %d training faces (%d unlabelled), %d held out, %d skipped, %d without a face",
        len(names), len(train), sum(1 for _, _, lab in with_face if lab < 0), len(heldout), len(skipped), no_face,
    )
    return TrainingData(
        names, train, heldout, workers, faces=faces, unlabelled_images=sum(1 for _, _, lab in with_face if lab < 0),
        skipped=skipped, no_face=no_face,
        cache={
            "file": path.name, "bytes": cache.size_on_disk(), "faces": len(cache),
            "seconds": {k: round(v, 1) for k, v in cache.seconds.items()}, "teacher": fingerprint,
        },
    )
