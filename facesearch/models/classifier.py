"""The trained classifier kept in a model file, for classification benchmarks.

The gallery never uses it: a query compares embeddings. But the training task (HW2P2) also
scores closed-set classification, and the classifier is what the last training phase
learned, so the model file carries it (class names, the class weights in fp16, and whether
the scores are a linear layer over the raw embedding, as after phase 1, or cosines to class
centres, as after a margin phase). It is not part of the encoder's fingerprint: it does not
change an embedding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from facesearch.errors import ModelError

KINDS = ("linear", "cosine")


@dataclass(frozen=True)
class Classifier:
    names: list[str]
    kind: str
    weight: torch.Tensor  # (classes, dim)
    bias: torch.Tensor | None = None

    @classmethod
    def from_head(cls, head: nn.Module, names: list[str]) -> "Classifier":
        """From a training head: SoftmaxHead (``classifier``, a Linear) or MarginHead (``weight``)."""
        linear = getattr(head, "classifier", None)
        if isinstance(linear, nn.Linear):
            bias = linear.bias.detach().cpu().clone() if linear.bias is not None else None
            return cls(list(names), "linear", linear.weight.detach().cpu().clone(), bias)
        return cls(list(names), "cosine", head.weight.detach().cpu().clone())

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"names": self.names, "kind": self.kind, "weight": self.weight.half()}
        if self.bias is not None:
            payload["bias"] = self.bias.float()
        return payload

    @classmethod
    def from_payload(cls, payload: dict[str, Any], source: str) -> "Classifier":
        try:
            names, kind, weight = list(payload["names"]), payload["kind"], payload["weight"].float()
            bias = payload.get("bias")
            if kind not in KINDS or weight.ndim != 2 or weight.shape[0] != len(names):
                raise ValueError("inconsistent classifier")
            if bias is not None and tuple(bias.shape) != (len(names),):
                raise ValueError("bias does not fit the classes")
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ModelError(f"{source}: its classifier is malformed ({exc})") from None
        return cls(names, kind, weight, None if bias is None else bias.float())

    def scores(self, raw: torch.Tensor) -> torch.Tensor:
        """Class scores (N, classes) for raw (not normalised) embeddings."""
        raw = raw.float()
        if self.kind == "linear":
            return F.linear(raw, self.weight, self.bias)
        return F.linear(F.normalize(raw, dim=1), F.normalize(self.weight, dim=1))
