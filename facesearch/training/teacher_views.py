"""What the teacher says each training view should embed to: the seam between the loop and
its teacher (``TeacherTargets``), with two kinds behind it.

* ``CachedTargets`` (``--teacher-views fixed``): the teacher's embedding of each face's plain
  aligned crop and of its mirror, computed once into the face cache. The student sees
  augmented views of the face but is asked for the clean view's embedding: it learns to be
  invariant to the augmentations, and the target and the input disagree.
* ``ViewTargets`` (``--teacher-views cached``): the teacher's embeddings of K augmented
  views of each face, computed once (``view_cache``); the student trains on those views
  only. Function matching at the price of fixed targets, with K views where online has one a
  step.
* ``OnlineTargets`` (``--teacher-views online``): the teacher embeds the very view the student
  trains on, every step (function matching: Beyer et al., "Knowledge distillation: A good
  teacher is patient and consistent", CVPR 2022). Costs a teacher forward per view.

``mix`` is mixup for the teacher's terms: part of a batch is blended with other faces of the
same batch, and only a teacher that sees the blend can say what it should embed to.
"""

from __future__ import annotations

import time
from typing import Protocol

import numpy as np
import torch

from facesearch.embedding.encoders import FaceEncoder


def pixels(views: torch.Tensor) -> np.ndarray:
    """Float views in the encoder's [-1, 1] range -> the uint8 (N, 3, S, S) a teacher embeds."""
    return np.ascontiguousarray(((views.detach().float().cpu() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy())


class TeacherTargets(Protocol):
    seconds: float  # spent in the teacher this epoch (0 for cached targets)

    def __call__(self, views: torch.Tensor, positions: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
        """Unit targets (N, D) for ``views`` (float, the encoder's [-1, 1] range) of the faces
        at ``positions`` of the training set; ``which`` view each is: mirrored or not (fixed
        targets), its number (cached views)."""


class CachedTargets:
    """The teacher's embeddings of each face's clean crop and its mirror, looked up."""

    seconds = 0.0

    def __init__(self, clean: torch.Tensor, flipped: torch.Tensor) -> None:
        self.clean, self.flipped = clean, flipped

    def __call__(self, views: torch.Tensor, positions: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
        positions, mirrored = positions.cpu(), which.cpu().bool()
        return torch.where(mirrored[:, None], self.flipped[positions], self.clean[positions])


class ViewTargets:
    """The teacher's embeddings of each face's K seeded views (N, K, D), looked up."""

    seconds = 0.0

    def __init__(self, targets: torch.Tensor) -> None:
        self.targets = targets

    def __call__(self, views: torch.Tensor, positions: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
        return self.targets[positions.cpu(), which.cpu().long()].float()


class OnlineTargets:
    """The teacher's embedding of each view as the student sees it."""

    def __init__(self, teacher: FaceEncoder) -> None:
        self.teacher = teacher
        self.seconds = 0.0

    def __call__(self, views: torch.Tensor, positions: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        embedded = self.teacher.embed_faces(pixels(views))
        self.seconds += time.perf_counter() - start
        return torch.from_numpy(np.asarray(embedded, np.float32))


def mix(views: torch.Tensor, labels: torch.Tensor, share: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Blend ``share`` of the views with another view of the batch (weight ~ Beta(0.4, 0.4),
    folded to the own face's side), in place of the originals; a blended view is nobody in
    particular, so its label becomes -1 (unnamed: the teacher's terms alone learn from it).
    Draws from torch's global RNG, which the loop reseeds every epoch (resume reproduces it)."""
    count = int(round(share * len(views)))
    if count == 0 or len(views) < 2:
        return views, labels
    chosen = torch.randperm(len(views))[:count]
    partner = (chosen + 1 + torch.randint(len(views) - 1, (count,))) % len(views)
    weight = torch.distributions.Beta(0.4, 0.4).sample((count,))
    weight = torch.maximum(weight, 1 - weight).to(views.dtype).view(-1, 1, 1, 1).to(views.device)
    views = views.clone()
    views[chosen.to(views.device)] = weight * views[chosen.to(views.device)] + (1 - weight) * views[partner.to(views.device)]
    labels = labels.clone()
    labels[chosen.to(labels.device)] = -1
    return views, labels
