"""The training run's images: the training split (decoded once into memory when it fits)
and the held-out photos used for validation.

Decoding a JPEG costs more than augmenting a 112x112 crop, and a run reads every image once
per epoch, so a dataset that fits (FIW's 12k photos take 0.5 GB) is decoded once, in
DataLoader workers, and kept as one uint8 tensor; bigger ones are read from disk every epoch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from facesearch.embedding.loader import face_loader
from facesearch.errors import InputError
from facesearch.training.config import TrainConfig
from facesearch.training.data import FaceClassification, Sample, labelled_folder, stratified_split

log = logging.getLogger(__name__)

CACHE_LIMIT = 4 * 2**30

Progress = Callable[[str, int, int, str], None]


def _quiet(description: str, done: int, total: int, info: str) -> None:
    pass


class _CachedFaces(Dataset):
    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform) -> None:  # noqa: ANN001
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, position: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images[position]), int(self.labels[position])


class _TaughtFaces(_CachedFaces):
    """(augmented image, class or -1, position, mirrored): the loop looks up the teacher's
    target of that view by position. The mirror is drawn here, not by the transform, because
    a mirrored face has its own target (the teacher's embedding of the mirror image)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform, mirror: bool) -> None:  # noqa: ANN001
        super().__init__(images, labels, transform)
        self.mirror = mirror

    def __getitem__(self, position: int) -> tuple[torch.Tensor, int, int, bool]:  # type: ignore[override]
        image = self.images[position]
        mirrored = self.mirror and bool(torch.rand(()) < 0.5)
        if mirrored:
            image = image.flip(-1)
        return self.transform(image), int(self.labels[position]), position, mirrored


def collate_taught(
    items: list[tuple[torch.Tensor, int, int, bool]],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images, labels, positions, mirrored) of a batch of ``_TaughtFaces`` items."""
    images, labels, positions, mirrored = zip(*items)
    return torch.stack(images), torch.tensor(labels), torch.tensor(positions), torch.tensor(mirrored)


@dataclass
class FaceSet:
    """Labelled faces, either decoded (``images`` set) or as files to decode on the fly,
    as ``side`` x ``side`` crops (the encoder's input size)."""

    paths: list[Path]
    labels: torch.Tensor
    side: int
    images: torch.Tensor | None = None
    targets: dict[str, torch.Tensor] | None = None  # the teacher's: "clean" and "flipped" (N, D)

    def __len__(self) -> int:
        return len(self.paths)

    def samples(self) -> list[Sample]:
        return list(zip(self.paths, self.labels.tolist()))

    def dataset(self, transform, mirror: bool = False) -> Dataset:  # noqa: ANN001
        """Augmented training items; with teacher targets, ``mirror`` draws the horizontal
        flip (the transform must then not flip)."""
        if self.images is not None and self.targets is not None:
            return _TaughtFaces(self.images, self.labels, transform, mirror)
        if self.images is not None:
            return _CachedFaces(self.images, self.labels, transform)
        return FaceClassification(self.samples(), transform, self.side)

    @classmethod
    def from_samples(cls, samples: Sequence[Sample], side: int) -> "FaceSet":
        return cls([p for p, _ in samples], torch.tensor([label for _, label in samples], dtype=torch.long), side)

    @classmethod
    def decode(
        cls, paths: Sequence[Path], side: int, workers: int | None = None, labels: Sequence[int] | None = None
    ) -> "FaceSet":
        """Decode every file into memory; files that fail are logged and left out."""
        images = torch.empty((len(paths), 3, side, side), dtype=torch.uint8)
        keep = torch.zeros(len(paths), dtype=torch.bool)
        for batch in face_loader(list(paths), side, batch_size=256, workers=workers):
            for position, reason in batch.failures:
                log.warning("skipping %s: %s", paths[position], reason)
            if batch.images is not None:
                images[batch.positions] = torch.from_numpy(batch.images)
                keep[batch.positions] = True
        label_tensor = torch.tensor(list(labels) if labels is not None else [-1] * len(paths), dtype=torch.long)
        kept = [p for p, k in zip(paths, keep.tolist()) if k]
        return cls(kept, label_tensor[keep], side, images if keep.all() else images[keep])


@dataclass
class TrainingData:
    names: list[str]
    train: FaceSet
    heldout: FaceSet
    workers: int
    faces: Callable[[Sequence[Path]], FaceSet] | None = None  # validation photos, prepared as training's
    unlabelled_images: int = 0
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    no_face: int = 0
    cache: dict[str, Any] = field(default_factory=dict)  # the prepared-faces cache: path, size, seconds

    def prepare(self, paths: Sequence[Path]) -> FaceSet:
        if self.faces is not None:
            return self.faces(paths)
        return FaceSet.decode(paths, self.train.side, self.workers)


def load_training_data(config: TrainConfig, progress: Progress = _quiet) -> TrainingData:
    """Read the training folder, split off (or read) held-out photos, decode what fits."""
    samples, names = labelled_folder(config.data)
    if config.val_dir:
        train_samples, heldout_samples = samples, _heldout_folder(config.val_dir, names)
    else:
        train_samples, heldout_samples = stratified_split(samples, config.holdout, config.seed)
    side = config.encoder_config().input_size
    workers = config.workers if config.workers is not None else max(1, min(8, (os.cpu_count() or 2) // 2))
    if config.prepared:
        from facesearch.training.prepared_data import load_prepared_data

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
