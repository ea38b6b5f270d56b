"""Where a run's faces come from: the labelled folder, split into training and held-out
photos (or a separate dev folder), then either decoded as they are or prepared and taught
(``taught_faces``: aligned, cached, with the teacher's targets)."""

from __future__ import annotations

import logging
import os

from facesearch.errors import InputError
from facesearch.progress import Progress, quiet
from facesearch.training.config import TrainConfig
from facesearch.training.face_sets import FaceSet, TrainingData
from facesearch.training.labelled import Sample, labelled_folder, stratified_split
from facesearch.training.taught_faces import load_prepared_data

log = logging.getLogger(__name__)

CACHE_LIMIT = 4 * 2**30
"""Decoded training crops are kept in memory up to this many bytes (else read each epoch)."""


def load_training_data(config: TrainConfig, progress: Progress = quiet) -> TrainingData:
    """Read the training folder, split off (or read) held-out photos, decode what fits."""
    samples, names = labelled_folder(config.data)
    if config.val_dir:
        train_samples, heldout_samples = samples, _heldout_folder(config.val_dir, names)
    else:
        train_samples, heldout_samples = stratified_split(samples, config.holdout, config.seed)
    side = config.encoder_config().input_size
    workers = config.workers if config.workers is not None else max(1, min(8, (os.cpu_count() or 2) // 2))
    if config.prepared:
        return load_prepared_data(config, names, train_samples, heldout_samples, workers, progress)
    cache = config.cache
    if cache is None:
        cache = len(train_samples) * 3 * side * side <= CACHE_LIMIT
    if cache:
        train = FaceSet.decode([p for p, _ in train_samples], side, workers, [lab for _, lab in train_samples])
    else:
        train = FaceSet.from_samples(train_samples, side)
    if len(train) == 0:
        raise InputError(f"{config.data}: no readable training images")
    heldout = FaceSet.decode([p for p, _ in heldout_samples], side, workers, [lab for _, lab in heldout_samples])
    log.info("%d people, %d training images, %d held out", len(names), len(train), len(heldout))
    return TrainingData(names, train, heldout, workers)


def _heldout_folder(folder: str, names: list[str]) -> list[Sample]:
    """A separate dev folder (HW2P2 ``classification/dev``): only people seen in training count."""
    samples, dev_names = labelled_folder(folder)
    index = {name: i for i, name in enumerate(names)}
    kept = [(path, index[dev_names[label]]) for path, label in samples if dev_names[label] in index]
    unknown = len({dev_names[label] for _, label in samples} - set(index))
    if unknown:
        log.warning("%s: %d people are not in the training folder; their photos are ignored", folder, unknown)
    return kept
