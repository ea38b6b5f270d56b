"""The faces a training run holds: ``FaceSet`` (decoded crops in memory, or files read each
epoch, with the teacher's targets when taught) and ``TrainingData`` (the run's sets).

Decoding a JPEG costs more than augmenting a 112x112 crop, and a run reads every image once
per epoch, so a dataset that fits (FIW's 12k photos take 0.5 GB) is decoded once, in
DataLoader workers, and kept as one uint8 tensor; bigger ones are read from disk every epoch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from facesearch.embedding.loader import face_loader
from facesearch.training.labelled import FaceClassification, Sample
from facesearch.training.view_cache import EveryView

log = logging.getLogger(__name__)

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


class _ViewedFaces(Dataset):
    """(view, class or -1, position, view number): one of the K views of each face whose
    teacher embeddings were computed once (``view_cache``), drawn at random each time."""

    def __init__(self, every: EveryView, labels: torch.Tensor) -> None:
        self.every, self.labels = every, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, position: int) -> tuple[torch.Tensor, int, int, int]:
        view = int(torch.randint(self.every.views, ()))
        picture, _ = self.every[position * self.every.views + view]
        return picture, int(self.labels[position]), position, view


def collate_taught(
    items: list[tuple[torch.Tensor, int, int, bool | int]],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images, labels, positions, which view: mirrored or the view's number) of a batch of
    ``_TaughtFaces`` or ``_ViewedFaces`` items."""
    images, labels, positions, which = zip(*items)
    return torch.stack(images), torch.tensor(labels), torch.tensor(positions), torch.tensor(which)


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

    def dataset(self, transform, mirror: bool = False, views: int = 0, seed: int = 0) -> Dataset:  # noqa: ANN001
        """Augmented training items; with teacher targets, ``mirror`` draws the horizontal
        flip (the transform must then not flip); ``views``: only the K seeded views of each
        face that ``view_cache`` had the teacher embed."""
        if self.images is not None and self.targets is not None and views:
            return _ViewedFaces(EveryView(self.images, transform, mirror, views, seed), self.labels)
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
