"""Labelled face folders for training: one folder per person, split and sampling.

Images go through the same safe decoding and 112x112 preprocessing as enrollment, so the
encoder trains on exactly what it will see at query time; augmentations then act on the
uint8 crop (torchvision transforms v2). A bad file is dropped from its batch with a
warning rather than killing a long run.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, WeightedRandomSampler

from facesearch.errors import ImageError, InputError
from facesearch.embedding.imaging import load_face
from facesearch.gallery.layouts import gallery_images

log = logging.getLogger(__name__)

Sample = tuple[Path, int]


def labelled_folder(root: str | Path) -> tuple[list[Sample], list[str]]:
    """``root/<identity>/<images>`` -> (samples, class names); class i is names[i]."""
    images, _ = gallery_images(root)
    names = sorted({image.identity for image in images})
    if not names:
        raise InputError(f"{root}: no labelled images found (expected DIR/<identity>/<images>)")
    index = {name: i for i, name in enumerate(names)}
    return [(image.path, index[image.identity]) for image in images], names


def stratified_split(samples: Sequence[Sample], fraction: float, seed: int = 0) -> tuple[list[Sample], list[Sample]]:
    """Hold out ``fraction`` of each class's images (seeded), but never a class's last image:
    people with one photo stay in training, as they would be lost to it otherwise."""
    by_class: dict[int, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_class[sample[1]].append(sample)
    rng = np.random.default_rng(seed)
    train, held_out = [], []
    for label in sorted(by_class):
        members = sorted(by_class[label])
        order = rng.permutation(len(members))
        count = min(int(round(fraction * len(members))), len(members) - 1)
        held_out += [members[i] for i in order[:count]]
        train += [members[i] for i in order[count:]]
    return train, held_out


def balanced_sampler(samples: Sequence[Sample], seed: int = 0) -> WeightedRandomSampler:
    """Draw every class equally often (by weighting each image 1 / its class's size)."""
    counts = Counter(label for _, label in samples)
    weights = torch.tensor([1.0 / counts[label] for _, label in samples], dtype=torch.double)
    generator = torch.Generator().manual_seed(seed)
    return WeightedRandomSampler(weights, num_samples=len(samples), replacement=True, generator=generator)


class FaceClassification(Dataset):
    """(augmented image, class) pairs; a file that fails to decode yields None."""

    def __init__(self, samples: Sequence[Sample], transform, size: int) -> None:  # noqa: ANN001
        self.samples = list(samples)
        self.transform = transform
        self.size = size

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, position: int) -> tuple[torch.Tensor, int] | None:
        path, label = self.samples[position]
        try:
            image = torch.from_numpy(load_face(path, self.size)[0])
        except ImageError as exc:
            log.warning("skipping %s", exc)
            return None
        return self.transform(image), label


def collate_labelled(items: list[tuple[torch.Tensor, int] | None]) -> tuple[torch.Tensor, torch.Tensor]:
    good = [item for item in items if item is not None]
    if not good:
        return torch.empty(0, 3, 1, 1), torch.empty(0, dtype=torch.long)
    return torch.stack([image for image, _ in good]), torch.tensor([label for _, label in good])
