"""Alignment: a similarity transform from five landmarks to the ArcFace template, and crops.

Recognisers trained on aligned faces (ArcFace, SFace and their kin) expect the eyes, nose and
mouth at fixed places; the transform (rotation, uniform scale, translation) is fitted by
OpenCV to all five points, then the photo is warped. The template is the standard one for
112x112, scaled for other sizes.
"""

from __future__ import annotations

import numpy as np

ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)
"""Where the five landmarks sit in a 112x112 ArcFace crop (insightface's template)."""


def template(size: int) -> np.ndarray:
    return ARCFACE_TEMPLATE * (size / 112.0)


def alignment_matrix(landmarks: np.ndarray, size: int) -> np.ndarray:
    """The 2x3 similarity transform taking the five landmarks onto the template.

    RANSAC with a threshold no face exceeds keeps all five points as inliers, so OpenCV's
    Levenberg-Marquardt refinement gives the least-squares fit over all of them.
    """
    import cv2

    points = np.asarray(landmarks, np.float32).reshape(5, 2)
    matrix, _ = cv2.estimateAffinePartial2D(
        points, template(size), method=cv2.RANSAC, ransacReprojThreshold=1e6, refineIters=50
    )
    if matrix is None:  # degenerate landmarks (all on one point)
        raise ValueError("landmarks do not define a similarity transform")
    return matrix


def crop_matrix(box: tuple[float, float, float, float], size: int, margin: float) -> np.ndarray:
    """The 2x3 transform taking the square around ``box`` (its longer side x ``margin``,
    same centre) onto a size x size crop."""
    left, top, right, bottom = box
    side = max(right - left, bottom - top) * margin
    scale = size / side
    cx, cy = (left + right) / 2, (top + bottom) / 2
    return np.array([[scale, 0, size / 2 - scale * cx], [0, scale, size / 2 - scale * cy]], np.float32)


def warp(rgb: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Apply a 2x3 transform into a size x size RGB crop, antialiased when it shrinks a lot
    (bilinear sampling of a face four times the crop's size would alias)."""
    import cv2

    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 0.5:
        factor = 2.0 * scale  # shrink to twice the crop's scale by area averaging first
        height, width = rgb.shape[:2]
        new = (max(1, round(width * factor)), max(1, round(height * factor)))
        rgb = cv2.resize(rgb, new, interpolation=cv2.INTER_AREA)
        # A pixel p of the photo is (p + 0.5) * f - 0.5 in the shrunk one (pixel centres).
        inverse = np.diag([width / new[0], height / new[1]])
        linear = matrix[:, :2] @ inverse
        offset = matrix[:, :2] @ (inverse @ np.full(2, 0.5) - 0.5) + matrix[:, 2]
        matrix = np.hstack([linear, offset[:, None]])
    return cv2.warpAffine(
        np.ascontiguousarray(rgb), matrix.astype(np.float32), (size, size),
        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0),
    )


def align(rgb: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """The face with these landmarks, aligned on the ArcFace template at size x size."""
    return warp(rgb, alignment_matrix(landmarks, size), size)
