"""What a detector gives: per face, a box, five landmarks and a score."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class Face:
    """A face found in a photo, in that photo's pixel coordinates.

    ``box`` is (left, top, right, bottom); ``landmarks`` are the (x, y) of the five points in
    the ArcFace order: the eye on the image's left, the other eye, the nose tip, the mouth
    corner on the image's left, the other corner.
    """

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def side(self) -> float:
        """The short side of the box: what --min-face compares."""
        return min(self.width, self.height)

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    def moved(self, dx: float, dy: float, scale: float = 1.0) -> "Face":
        """The same face in another frame: ``(p - (dx, dy)) * scale``."""
        left, top, right, bottom = self.box
        shift = np.array([dx, dy], np.float32)
        return Face(
            ((left - dx) * scale, (top - dy) * scale, (right - dx) * scale, (bottom - dy) * scale),
            ((self.landmarks - shift) * scale).astype(np.float32),
            self.score,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": [round(float(v), 1) for v in self.box],
            "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in self.landmarks],
            "detection_score": round(float(self.score), 4),
        }


class Detector(Protocol):
    """Finds faces in an RGB uint8 image (H, W, 3); any order, any number.

    ``smallest`` is a hint, in the image's pixels: faces whose short side is under it need
    not be looked for (a detector whose cost grows with the range of face sizes, as MTCNN's
    image pyramid, skips that work; others may ignore it)."""

    name: str

    def detect(self, rgb: np.ndarray, smallest: float = 0.0) -> list[Face]: ...
