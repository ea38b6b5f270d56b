"""Face finding and alignment: the maths on synthetic landmarks, the preparer's rules
(largest first, padding retry, --min-face, --max-faces, no face), detector specs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facesearch.errors import ImageError, InputError
from facesearch.embedding.face_finding import Face, parse_detector
from facesearch.embedding.face_finding.align import ARCFACE_TEMPLATE, align, alignment_matrix, crop_matrix, template, warp
from facesearch.embedding.face_finding.prepare import DETECT_SIDE, FacePreparer, preparer_for
from facesearch.embedding.preprocessing import Preprocessing
from tests.planted import PlantedDetector, compose

ALIGNED = Preprocessing(alignment="arcface-5pt", detect=True)


def similarity(angle: float, scale: float, tx: float, ty: float) -> np.ndarray:
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[c, -s, tx], [s, c, ty]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def test_alignment_recovers_a_known_similarity_transform() -> None:
    # Landmarks = the template moved by a known transform; the fit must undo it exactly.
    known = similarity(np.deg2rad(23.0), 2.7, 310.0, -45.0)
    landmarks = apply(known, ARCFACE_TEMPLATE.astype(np.float64))
    fitted = alignment_matrix(landmarks.astype(np.float32), 112)
    inverse = np.linalg.inv(np.vstack([known, [0, 0, 1]]))[:2]
    assert np.allclose(fitted, inverse, atol=1e-4)
    assert np.allclose(apply(fitted, landmarks), ARCFACE_TEMPLATE, atol=1e-3)


def test_alignment_is_the_least_squares_fit_over_all_five_points() -> None:
    rng = np.random.default_rng(3)
    known = similarity(np.deg2rad(-12.0), 1.6, 80.0, 40.0)
    clean = apply(known, ARCFACE_TEMPLATE.astype(np.float64))
    noisy = (clean + rng.normal(0, 1.5, clean.shape)).astype(np.float32)
    fitted = alignment_matrix(noisy, 112)
    residual = np.linalg.norm(apply(fitted, noisy) - ARCFACE_TEMPLATE, axis=1)
    assert residual.max() < 3.0  # no point is given up as an outlier
    # The closed-form (Umeyama) least-squares similarity, computed independently:
    src, dst = noisy.astype(np.float64), ARCFACE_TEMPLATE.astype(np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    cov = (dst - mu_d).T @ (src - mu_s) / len(src)
    u, d, vt = np.linalg.svd(cov)
    rotation = u @ vt
    scale = d.sum() / ((src - mu_s) ** 2).sum(axis=1).mean()
    expected = np.hstack([scale * rotation, (mu_d - scale * rotation @ mu_s)[:, None]])
    assert np.allclose(fitted, expected, atol=2e-3)


def test_template_scales_with_the_input_size() -> None:
    assert np.allclose(template(224), ARCFACE_TEMPLATE * 2)
    known = similarity(0.3, 1.2, 5.0, 9.0)
    landmarks = apply(known, ARCFACE_TEMPLATE.astype(np.float64)).astype(np.float32)
    assert np.allclose(apply(alignment_matrix(landmarks, 160), landmarks), template(160), atol=1e-3)


def dots(size: tuple[int, int], points: np.ndarray) -> np.ndarray:
    image = np.zeros((size[1], size[0], 3), np.uint8)
    for x, y in np.round(points).astype(int):
        image[y - 2 : y + 3, x - 2 : x + 3] = 255
    return image


def centroids(image: np.ndarray, near: np.ndarray, radius: int = 6) -> np.ndarray:
    grey = image[..., 0].astype(np.float64)
    found = []
    for x, y in np.round(near).astype(int):
        patch = grey[y - radius : y + radius + 1, x - radius : x + radius + 1]
        ys, xs = np.mgrid[y - radius : y + radius + 1, x - radius : x + radius + 1]
        found.append([(patch * xs).sum() / patch.sum(), (patch * ys).sum() / patch.sum()])
    return np.array(found)


@pytest.mark.parametrize("scale", [1.1, 4.0])  # 4x: the warp shrinks by area first (antialiasing)
def test_warped_landmarks_land_on_the_template(scale: float) -> None:
    known = similarity(np.deg2rad(15.0), scale, 60.0, 30.0)
    points = apply(known, ARCFACE_TEMPLATE.astype(np.float64))
    photo = dots((int(points[:, 0].max()) + 60, int(points[:, 1].max()) + 60), points)
    aligned = align(photo, points.astype(np.float32), 112)
    assert aligned.shape == (112, 112, 3)
    assert np.abs(centroids(aligned, ARCFACE_TEMPLATE) - ARCFACE_TEMPLATE).max() < 0.7


def test_crop_matrix_takes_the_square_around_the_box() -> None:
    matrix = crop_matrix((100.0, 50.0, 200.0, 250.0), 112, 1.0)  # 100 x 200 box: a 200 px square
    corners = apply(matrix, np.array([[50.0, 50.0], [250.0, 250.0]]))
    assert np.allclose(corners, [[0, 0], [112, 112]], atol=1e-4)
    photo = np.full((300, 300, 3), 7, np.uint8)
    assert warp(photo, matrix, 112).shape == (112, 112, 3)


def test_face_moves_between_frames_and_reports_itself() -> None:
    face = Face((10.0, 20.0, 50.0, 80.0), np.full((5, 2), 30.0, np.float32), 0.95)
    moved = face.moved(5, 10, 2.0)
    assert moved.box == (10.0, 20.0, 90.0, 140.0) and np.allclose(moved.landmarks, [50.0, 40.0])
    assert (face.side, face.area) == (40.0, 2400.0)
    assert face.to_dict() == {"box": [10.0, 20.0, 50.0, 80.0], "landmarks": [[30.0, 30.0]] * 5, "detection_score": 0.95}


def test_detector_specs() -> None:
    assert parse_detector("mtcnn") == ("mtcnn", None)
    assert parse_detector("MTCNN") == ("mtcnn", None)
    with pytest.raises(InputError, match="unknown detector 'retina'"):
        parse_detector("retina")
    with pytest.raises(InputError, match="needs its ONNX file"):
        parse_detector("yunet")
    with pytest.raises(InputError, match="not found"):
        parse_detector("yunet:/no/such/yunet.onnx")
    with pytest.raises(InputError, match="takes no file"):
        parse_detector("mtcnn:/x.onnx")
    with pytest.raises(InputError, match="bogus"):  # a bad spec fails where it is given
        FacePreparer(ALIGNED, "bogus")


class Scripted:
    """Returns faces given per call (the first detection, then the padded retry)."""

    name = "scripted"

    def __init__(self, *answers: list[Face]) -> None:
        self.answers = list(answers)
        self.shapes: list[tuple[int, ...]] = []

    def detect(self, rgb: np.ndarray, smallest: float = 0.0) -> list[Face]:
        self.shapes.append(rgb.shape)
        return self.answers.pop(0) if self.answers else []


def face(left: float, top: float, side: float, score: float = 0.99) -> Face:
    marks = ARCFACE_TEMPLATE / 112 * side + np.array([left, top], np.float32)
    return Face((left, top, left + side, top + side), marks.astype(np.float32), score)


def preparer_with(detector: object, **options: object) -> FacePreparer:
    preparer = FacePreparer(ALIGNED, "mtcnn", **options)  # type: ignore[arg-type]
    preparer._detector = detector  # type: ignore[assignment]
    return preparer


PHOTO = Image.new("RGB", (400, 300), (90, 90, 90))


def test_faces_come_largest_first_and_max_faces_keeps_the_largest() -> None:
    detector = Scripted([face(0, 0, 40), face(100, 50, 120), face(300, 10, 80)])
    photo = preparer_with(detector, max_faces=2).prepare(PHOTO)
    assert photo.found == 3
    assert [f.face.side for f in photo.faces] == [120, 80]
    assert all(f.pixels.shape == (112, 112, 3) and f.pixels.dtype == np.uint8 for f in photo.faces)


def test_a_face_filling_the_frame_is_found_on_the_padded_retry() -> None:
    # The retry sees the photo padded by 25% a side; its coordinates are mapped back.
    detector = Scripted([], [face(100 + 10, 75 + 20, 200)])
    [found] = preparer_with(detector).find(np.asarray(PHOTO))
    assert detector.shapes == [(300, 400, 3), (450, 600, 3)]
    assert found.box == (10.0, 20.0, 210.0, 220.0)


def test_weak_faces_count_only_when_no_strong_one_is_found() -> None:
    strong_and_weak = Scripted([face(0, 0, 50, 0.95), face(100, 0, 150, 0.7)])
    assert [f.score for f in preparer_with(strong_and_weak).find(np.asarray(PHOTO))] == [0.95]
    weak_only = Scripted([face(100, 0, 150, 0.7), face(0, 0, 50, 0.3)])
    assert [f.score for f in preparer_with(weak_only).find(np.asarray(PHOTO))] == [0.7]


def test_no_face_and_small_faces_are_clear_errors_or_the_whole_photo() -> None:
    with pytest.raises(ImageError, match="no face found"):
        preparer_with(Scripted([], [])).find(np.asarray(PHOTO), "a.jpg")
    with pytest.raises(ImageError, match=r"no face of at least 100 px \(--min-face\): 2 smaller, the largest 60 px"):
        preparer_with(Scripted([face(0, 0, 60), face(200, 0, 30)]), min_face=100).find(np.asarray(PHOTO))
    photo = preparer_with(Scripted([], []), fallback=True).prepare(PHOTO)
    assert photo.found == 0 and photo.faces[0].face is None  # bench: the whole photo stands in


def test_large_photos_are_detected_small_and_mapped_back() -> None:
    big = Image.new("RGB", (4096, 2048), (90, 90, 90))
    detector = Scripted([face(100, 100, 50)])  # in the 1024 x 512 copy
    [found] = preparer_with(detector).find(np.asarray(big))
    assert detector.shapes == [(DETECT_SIDE // 2, DETECT_SIDE, 3)]
    assert found.box == pytest.approx((400.0, 400.0, 600.0, 600.0))


def test_without_detection_the_photo_is_its_centred_square() -> None:
    photo = FacePreparer(Preprocessing(input_size=64)).prepare(Image.new("RGB", (200, 100), (1, 2, 3)))
    assert photo.found is None and photo.faces[0].face is None and photo.faces[0].pixels.shape == (64, 64, 3)


def test_detector_override_switches_detection() -> None:
    crop = Preprocessing()
    assert not preparer_for(crop).detects
    assert preparer_for(crop, "mtcnn").detects  # a crop encoder given a detector crops each box
    assert not preparer_for(ALIGNED, "none").detects  # --no-detect: photos are already aligned faces
    assert preparer_for(ALIGNED, None, "planted").detector_spec == "planted"  # the gallery's own
    assert preparer_for(crop, None, "planted").detects and not preparer_for(crop, None, "none").detects


def test_planted_detector_finds_pasted_faces(faces_dir: Path) -> None:
    photos = sorted(faces_dir.glob("*/0000.jpg"))[:3]
    canvas = compose([(photos[0], (20, 40, 150)), (photos[1], (250, 60, 100)), (photos[2], (420, 200, 60))])
    found = sorted(PlantedDetector().detect(np.asarray(canvas)), key=lambda f: -f.area)
    assert [round(f.side) for f in found] == [150, 100, 60]
    assert found[0].box == pytest.approx((20, 40, 170, 190), abs=2)


def test_preprocessing_is_validated() -> None:
    from facesearch.errors import ModelError

    with pytest.raises(ModelError, match="unknown alignment"):
        Preprocessing(alignment="5pt")
    with pytest.raises(ModelError, match="3 values"):
        Preprocessing.from_dict({"mean": [1, 2]})
    with pytest.raises(ModelError, match="input_size must be an integer"):
        Preprocessing.from_dict({"input_size": "112"})
    assert Preprocessing.from_dict({"alignment": "arcface-5pt"}).detect  # aligned encoders detect by default

