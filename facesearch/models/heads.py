"""Embedding heads: a backbone's (N, C, H, W) map to an N x D face embedding.

``gdc`` (global depthwise conv, MobileFaceNet) learns one weight per channel and position,
so eyes and mouth are weighed differently, for only C*H*W extra weights. ``fc`` is the
insightface head (flatten everything into one linear layer): stronger on big data, but
C*H*W*D weights. ``avg`` is plain global average pooling, the ImageNet habit, as a baseline.
``linear`` is one affine map of the flattened features and nothing else: it holds a fitted
projection, such as the PCA baseline's (weights = components, bias = -components @ mean).
"""

from __future__ import annotations

from torch import nn

HEADS = ("gdc", "fc", "avg", "linear")


def create_head(
    kind: str, channels: int, height: int, width: int, dim: int, dropout: float = 0.0
) -> nn.Module:
    """Build an embedding head; the last layer is BatchNorm1d, as in the ArcFace recipe
    (except ``linear``, a bare affine map for fitted projections)."""
    if kind == "linear":
        return nn.Sequential(nn.Flatten(), nn.Linear(channels * height * width, dim))
    if kind == "gdc":
        pool: list[nn.Module] = [
            nn.Conv2d(channels, channels, (height, width), groups=channels, bias=False),
            nn.BatchNorm2d(channels),
            nn.Flatten(),
        ]
        features = channels
    elif kind == "fc":
        pool = [nn.BatchNorm2d(channels), nn.Flatten()]
        features = channels * height * width
    elif kind == "avg":
        pool = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        features = channels
    else:
        raise ValueError(f"unknown head {kind!r} (known: {', '.join(HEADS)})")
    return nn.Sequential(
        *pool,
        nn.Dropout(dropout),
        nn.Linear(features, dim, bias=False),
        nn.BatchNorm1d(dim),
    )
