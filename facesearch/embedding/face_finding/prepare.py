"""From a decoded photo to encoder inputs, as the encoder's preprocessing says.

Without detection the photo is the face: its centred square, resized. With detection every
face is found (on a copy no larger than ``DETECT_SIDE``, for speed; coordinates are mapped
back), then either aligned on its five landmarks (``arcface-5pt``) or cropped to the square
around its box (``crop``), from the full-resolution photo.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from facesearch.errors import ImageError
from facesearch.embedding.face_finding.align import align, crop_matrix, warp
from facesearch.embedding.face_finding.base import Detector, Face
from facesearch.embedding.face_finding.detectors import create_detector, parse_detector
from facesearch.embedding.imaging import square_resize
from facesearch.embedding.preprocessing import Preprocessing

DETECT_SIDE = 1024
"""Photos are detected at most this many pixels on the longer side (faces of 20 px and up
at that scale are found; a 4000 px phone photo would cost 15x more for nothing)."""

SMALLEST_FACE = 40
"""Faces are looked for from this many pixels (short side, in the photo) unless ``--min-face``
says otherwise, and from half a small photo's short side at most (a 48 px crop's face is
still found). Smaller faces carry too little for recognition (the encoders see 112 px), and
looking for them is most of MTCNN's work: on 300 cfp-dev faces in 640x480 frames, 28.8 ms a
photo from 20 px against 14.5 ms from 40 px, the same faces found (benchmarks/photos.py)."""

PAD = 0.25
"""A crop whose face fills the frame is often missed: it is padded by this share of its
size on each side and detected again before giving up."""

STRONG, WEAK = 0.9, 0.6
"""Detection scores: faces of ``STRONG`` and up are taken; only when a photo has none are
its ``WEAK`` ones taken (on a sample of 200 cfp-dev crops, YuNet scored 9%, frontal ones
among them, between 0.6 and 0.9; padding alone did not find them)."""

CROP_MARGIN = 0.8
"""``crop`` encoders with a detector: the crop's side is the box's longer side times this.
Chosen by measurement: the shipped reference (trained on tight FIW crops) on cfp-dev photos
pasted into 640x480 frames scored open-set accuracy / rank-1 0.296 / 0.267 at 0.8 with YuNet
(0.245 / 0.160 at 1.05, 0.223 / 0.113 at 1.15, 0.296 / 0.245 at 0.7) and 0.283 / 0.242 with
MTCNN (0.240 / 0.133 at 1.05), against 0.304 / 0.270 on the tight crops themselves. Chosen
on that evaluation set, so slightly flattering there. Our reading, not checked: a box seen
whole is larger than the face in such a crop, where the frame cuts it (the box/crop ratios
measured on tight crops, 1.01 for FIW and 1.08 for CFP, had suggested about 1.05)."""


@dataclass(frozen=True)
class PreparedFace:
    """One encoder input: ``pixels`` (S, S, 3) uint8 RGB, and the face it shows (None when
    the whole photo was taken as the face)."""

    pixels: np.ndarray
    face: Face | None


@dataclass(frozen=True)
class PreparedPhoto:
    """The faces of one photo, largest first; ``found`` counts the faces detected (None:
    no detection; 0: none found, and the whole photo stands in, as bench asks)."""

    faces: list[PreparedFace]
    found: int | None


class FacePreparer:
    """Detection, alignment and cropping for one encoder's preprocessing.

    ``fallback``: when no face is found, take the whole photo instead of failing (bench: a
    probe must be answered; enroll and query fail with a clear message instead).
    The detector is built on first use; ``fresh`` gives a worker thread its own.
    """

    def __init__(
        self,
        preprocessing: Preprocessing,
        detector: str = "mtcnn",
        min_face: int = 0,
        max_faces: int | None = None,
        fallback: bool = False,
        smallest_face: int = SMALLEST_FACE,
    ) -> None:
        if preprocessing.detect:
            parse_detector(detector)  # a bad spec fails here, in the caller, not in a worker
        self.preprocessing = preprocessing
        self.detector_spec = detector
        self.min_face = min_face
        self.max_faces = max_faces
        self.fallback = fallback
        self.smallest_face = smallest_face
        self._detector: Detector | None = None

    def fresh(self) -> "FacePreparer":
        """The same preparation with a detector of its own (built on first use)."""
        clone = copy.copy(self)
        clone._detector = None
        return clone

    @property
    def detects(self) -> bool:
        return self.preprocessing.detect

    @property
    def size(self) -> int:
        return self.preprocessing.input_size

    @property
    def draft_side(self) -> int:
        """How far a JPEG may be scaled down while decoding (see imaging.decode)."""
        return DETECT_SIDE if self.detects else self.size

    def detector(self) -> Detector:
        if self._detector is None:
            self._detector = create_detector(self.detector_spec)
        return self._detector

    def prepare(self, image: Image.Image, source: str | Path = "<image>") -> PreparedPhoto:
        """Every face of the photo (at most ``max_faces``), largest first."""
        if not self.detects:
            return PreparedPhoto([PreparedFace(self._whole(image), None)], None)
        rgb = np.asarray(image, dtype=np.uint8)
        faces = self.find(rgb, source)
        if not faces:
            return PreparedPhoto([PreparedFace(self._whole(image), None)], 0)
        chosen = faces[: self.max_faces] if self.max_faces else faces
        return PreparedPhoto([PreparedFace(self._face_pixels(rgb, f), f) for f in chosen], len(faces))

    def find(self, rgb: np.ndarray, source: str | Path = "<image>") -> list[Face]:
        """The faces of an RGB photo of at least ``min_face`` px, largest first; [] when
        none was found and ``fallback`` is on (otherwise a clear ImageError)."""
        height, width = rgb.shape[:2]
        scale = min(1.0, DETECT_SIDE / max(height, width))
        small = rgb if scale == 1.0 else _resize(rgb, scale)
        smallest = scale * min(self.min_face or self.smallest_face, min(height, width) // 2)
        found = self.detector().detect(small, smallest)
        faces = [f for f in found if f.score >= STRONG] or [f for f in found if f.score >= WEAK]
        if not faces:
            pad_y, pad_x = round(PAD * small.shape[0]), round(PAD * small.shape[1])
            padded = np.pad(small, ((pad_y, pad_y), (pad_x, pad_x), (0, 0)), mode="constant")
            faces = [f.moved(pad_x, pad_y) for f in self.detector().detect(padded, smallest) if f.score >= WEAK]
        faces = sorted((f.moved(0, 0, 1.0 / scale) for f in faces), key=lambda f: -f.area)
        kept = [f for f in faces if f.side >= self.min_face]
        if kept or self.fallback:
            return kept
        if faces:
            raise ImageError(
                source, f"no face of at least {self.min_face} px (--min-face): {len(faces)} smaller, "
                f"the largest {faces[0].side:.0f} px"
            )
        raise ImageError(source, f"no face found (detector {self.detector().name})")

    def _face_pixels(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        if self.preprocessing.alignment == "arcface-5pt":
            return align(rgb, face.landmarks, self.size)
        return warp(rgb, crop_matrix(face.box, self.size, CROP_MARGIN), self.size)

    def _whole(self, image: Image.Image) -> np.ndarray:
        return np.asarray(square_resize(image, self.size), dtype=np.uint8)


def preparer_for(
    preprocessing: Preprocessing,
    detector: str | None = None,
    default: str | None = None,
    **options: object,
) -> FacePreparer:
    """The preparer for an encoder's preprocessing with a user's ``detector`` choice, else
    ``default`` (the one a gallery was enrolled with): ``none`` switches detection off, any
    other detector switches it on. With neither, the encoder decides, and mtcnn finds faces."""
    choice = detector if detector is not None else default
    if choice is not None:
        preprocessing = preprocessing.with_detection(choice.strip().lower() != "none")
    spec = choice if choice is not None and choice.strip().lower() != "none" else "mtcnn"
    return FacePreparer(preprocessing, spec, **options)  # type: ignore[arg-type]


def _resize(rgb: np.ndarray, scale: float) -> np.ndarray:
    import cv2

    height, width = rgb.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
