"""A test double for face detection: faces pasted onto a white canvas are "found" exactly.

Real detectors do not reliably find the drawn faces of ``facesearch.synthetic``, so the core
tests of multi-face photos use this one (``--detector planted``): every connected region of
non-white pixels is a face, its box the region's, its landmarks the ArcFace template mapped
into the box. Real detectors are tested on real photos (test_realfaces.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from facesearch.embedding.face_finding import Face, register_detector
from facesearch.embedding.face_finding.align import ARCFACE_TEMPLATE

WHITE = (255, 255, 255)


class PlantedDetector:
    name = "planted"

    def detect(self, rgb: np.ndarray, smallest: float = 0.0) -> list[Face]:
        import cv2

        mask = (rgb.min(axis=2) < 245).astype(np.uint8)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        faces = []
        for left, top, width, height, _area in stats[1:count]:
            if min(width, height) < 12:
                continue
            if width == rgb.shape[1] and height == rgb.shape[0]:
                continue  # no background around it: not a pasted face
            marks = ARCFACE_TEMPLATE / 112.0 * np.array([width, height], np.float32) + np.array([left, top], np.float32)
            faces.append(Face((float(left), float(top), float(left + width), float(top + height)), marks, 0.99))
        return faces


register_detector("planted", lambda _path: PlantedDetector())


def compose(faces: list[tuple[Path, tuple[int, int, int]]], size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A white canvas with each photo pasted at (left, top) as a square of the given side."""
    canvas = Image.new("RGB", size, WHITE)
    for path, (left, top, side) in faces:
        canvas.paste(Image.open(path).convert("RGB").resize((side, side)), (left, top))
    return canvas
