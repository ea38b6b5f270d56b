"""The augmentations a training view goes through, each switchable (``--augment``).

They act on the uint8 crop the encoder will see (torchvision transforms v2), after the same
safe decoding and preprocessing as enrollment.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class AugmentConfig:
    """Each augmentation can be switched on or off (defaults: the cheap, safe ones)."""

    hflip: bool = True
    resized_crop: bool = True
    color_jitter: bool = True
    randaugment: bool = False
    erasing: bool = False
    perspective: bool = False
    rotation: bool = False


def train_transform(config: AugmentConfig, size: int = 112):  # noqa: ANN201 (a v2.Compose)
    """uint8 (3, S, S) crop -> augmented float tensor in the encoder's [-1, 1] range."""
    from torchvision.transforms import v2

    steps: list = []
    if config.resized_crop:  # faces are aligned crops: mild scale and aspect changes only
        steps.append(v2.RandomResizedCrop(size, scale=(0.8, 1.0), ratio=(0.9, 1.1), antialias=True))
    if config.hflip:
        steps.append(v2.RandomHorizontalFlip())
    if config.rotation:
        steps.append(v2.RandomRotation(10))
    if config.perspective:
        steps.append(v2.RandomPerspective(distortion_scale=0.2, p=0.3))
    if config.color_jitter:
        steps.append(v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05))
    if config.randaugment:
        steps.append(v2.RandAugment(num_ops=2, magnitude=9))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.5] * 3, [0.5] * 3)]
    if config.erasing:
        steps.append(v2.RandomErasing(p=0.25, scale=(0.02, 0.15)))
    return v2.Compose(steps)
