"""Margin heads for the fine-tuning phase: classifiers over cosine similarity.

All three compare the L2-normalised embedding with L2-normalised class centres (the rows of
``weight``), scale the cosines by ``s`` and apply cross-entropy, so what the network learns
is an angle, which is what the gallery's inner-product search measures:

* ``arcface``: the target class's angle is widened by ``m`` (cos(theta + m)), so a face must
  beat every other class by a margin; defaults s=64, m=0.5 (Deng et al., 2019).
* ``normsoftmax``: the same without the margin (m = 0), the baseline to compare against.
* ``intra``: normalised softmax plus ``alpha`` times the mean angle to the own class centre,
  pulling each class together without a margin.

Phase 1 trains with ``SoftmaxHead`` (a plain linear classifier with label smoothing). Every head
here maps (embeddings, labels) to (loss, logits) and has ``predict``, so the training loop
does not care which phase it is in.

The margin head starts from the phase-1 classifier's rows, normalised, so fine-tuning starts from a
classifier that already separates the classes instead of from random centres.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LOSSES = ("arcface", "normsoftmax", "intra")
_EPS = 1e-7


class SoftmaxHead(nn.Module):
    """Phase 1: a linear classifier over the raw embedding, cross-entropy with smoothing."""

    def __init__(self, dim: int, classes: int, label_smoothing: float = 0.1) -> None:
        super().__init__()
        self.classifier = nn.Linear(dim, classes)
        self.label_smoothing = label_smoothing

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.classifier(embeddings.float())
        return F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing), logits

    def predict(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.classifier(embeddings.float()).argmax(1)


class MarginHead(nn.Module):
    def __init__(
        self,
        dim: int,
        classes: int,
        loss: str = "arcface",
        scale: float = 64.0,
        margin: float = 0.5,
        alpha: float = 0.1,
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r} (known: {', '.join(LOSSES)})")
        if not 0.0 <= margin < math.pi / 2:
            raise ValueError(f"margin {margin} must be in [0, pi/2)")
        self.loss_kind = loss
        self.scale = scale
        self.margin = margin if loss == "arcface" else 0.0
        self.alpha = alpha if loss == "intra" else 0.0
        self.weight = nn.Parameter(torch.randn(classes, dim) * 0.01)

    @classmethod
    def from_classifier(cls, classifier: nn.Linear, **kwargs: float | str) -> "MarginHead":
        """A margin head whose class centres are the classifier's rows, normalised."""
        head = cls(classifier.in_features, classifier.out_features, **kwargs)  # type: ignore[arg-type]
        with torch.no_grad():
            head.weight.copy_(F.normalize(classifier.weight.detach(), dim=1))
        return head

    def cosines(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Cosine of each embedding with each class centre, (N, classes)."""
        return F.linear(F.normalize(embeddings.float(), dim=1), F.normalize(self.weight, dim=1))

    def predict(self, embeddings: torch.Tensor) -> torch.Tensor:
        """The nearest class centre (no margin: the margin only shapes training)."""
        return self.cosines(embeddings).argmax(1)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, logits); logits carry the margin, so accuracy from them is conservative."""
        cos = self.cosines(embeddings).clamp(-1 + _EPS, 1 - _EPS)
        target = cos.gather(1, labels[:, None])
        theta = torch.acos(target)
        if self.margin > 0:
            # Past pi - m, cos(theta + m) would start rising again; keep the penalty monotonic
            # there by falling back to a linear decrease (as the ArcFace reference does).
            widened = torch.cos(theta + self.margin)
            fallback = target - self.margin * math.sin(self.margin)
            target_logit = torch.where(theta + self.margin < math.pi, widened, fallback)
            cos = cos.scatter(1, labels[:, None], target_logit)
        logits = self.scale * cos
        loss = F.cross_entropy(logits, labels)
        if self.alpha > 0:
            loss = loss + self.alpha * theta.mean()
        return loss, logits
