"""How usable a face is for recognition, in [0, 1]: the geometric mean of three measured parts,
so that any one of them near 0 sinks the whole.

* size: the face's short side against the encoder's input side (112 px), capped at 1: a
  smaller face is upsampled and its details are guesses;
* sharpness: the variance of the Laplacian of the aligned grey crop against ``SHARP``, capped
  at 1: blur and motion flatten it;
* pose: how frontal it is, from the five landmarks: the nose tip's offset from the eyes'
  midline over the distance between the eyes (0 frontal; 0.5 and more a profile), mapped to
  1 - 2 x offset.

A face taken whole (no detection) has no box or landmarks: its size is the crop's and its pose
counts as frontal. The grouping of unnamed faces leaves those below its quality gate out.

What it is and is not, measured on cfp-dev (benchmarks/quality.py, results/quality.md): it
tells frontal photos (quartiles 0.94 / 0.97 / 0.99) from profiles (0.10 / 0.10 / 0.15: the pose
part alone floors them near 0.1), so it says which faces are hard to compare. It does not rank
pairs within one kind: frontal pairs in its lowest, middle and highest terciles score the
same ROC-AUC (SFace 0.9998 / 0.9997 / 0.9997), and among profile pairs the "best" tercile
scores worst (SFace 0.958 against 0.985), MTCNN's landmarks on a turned face being what its
pose part reads. Hence the grouping's gate at 0.05, where only faces poor on two counts fall.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from facesearch.embedding.face_finding.base import Face

SHARP = 300.0
"""Laplacian variance of a sharp 112 px face: an aligned cfp-dev frontal face scores 200-1500."""
FLOOR = 1e-3  # a part never counts as exactly 0, so the mean still orders the worst faces


def size_part(side: float, input_size: int = 112) -> float:
    return min(1.0, max(FLOOR, side / input_size))


def sharpness_part(pixels: np.ndarray) -> float:
    grey = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2GRAY)
    return min(1.0, max(FLOOR, float(cv2.Laplacian(grey, cv2.CV_64F).var()) / SHARP))


def pose_part(landmarks: np.ndarray | None) -> float:
    if landmarks is None:
        return 1.0
    points = np.asarray(landmarks, np.float64)
    left, right, nose = points[0], points[1], points[2]
    eyes = right - left
    distance = float(np.linalg.norm(eyes))
    if distance < 1e-6:
        return FLOOR
    offset = abs(float(np.dot(nose - (left + right) / 2, eyes / distance))) / distance
    return min(1.0, max(FLOOR, 1.0 - 2.0 * offset))


def face_quality(pixels: np.ndarray, face: Face | None, input_size: int = 112) -> float:
    """The quality of one prepared face (``pixels``: the encoder's RGB crop)."""
    side = face.side if face is not None else float(min(pixels.shape[:2]))
    parts = (size_part(side, input_size), sharpness_part(pixels), pose_part(face.landmarks if face is not None else None))
    return round(math.prod(parts) ** (1 / 3), 4)
