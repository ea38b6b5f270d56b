"""Real detectors, alignment and SFace on real photos (../shared/models/sface and cfp-dev),
when present: faces are found, aligned as OpenCV aligns them, and answered face by face."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facesearch.gallery.engine import Gallery
from facesearch.embedding.face_finding.align import align
from facesearch.embedding.face_finding.detectors import YunetDetector
from facesearch.embedding.face_finding.mtcnn import Mtcnn
from facesearch.embedding.imaging import decode, read_bytes
from tests.conftest import CFP, cli_json, needs_datasets

SFACE_DIR = Path(__file__).resolve().parents[2] / "shared" / "models" / "sface"
SFACE = SFACE_DIR / "face_recognition_sface_2021dec.onnx"
YUNET = SFACE_DIR / "face_detection_yunet_2023mar.onnx"
IMAGES = CFP / "images"
KNOWN = CFP / "verification" / "known"

pytestmark = [needs_datasets(IMAGES), needs_datasets(SFACE), pytest.mark.realdata]

PEOPLE = sorted(p.name for p in KNOWN.iterdir())[10:16] if KNOWN.is_dir() else []
"""A few enrolled people of cfp-dev's gallery."""


def rgb(path: Path) -> np.ndarray:
    return np.asarray(decode(read_bytes(path), path))


@pytest.mark.parametrize("make", [Mtcnn, lambda: YunetDetector(YUNET)], ids=["mtcnn", "yunet"])
def test_detectors_find_the_face_of_a_real_crop(make: object) -> None:
    photo = rgb(IMAGES / "Al_Pacino" / "Al_Pacino_0001.jpg")
    faces = make().detect(photo)  # type: ignore[operator]
    best = max(faces, key=lambda f: f.score)
    left, top, right, bottom = best.box
    assert best.score > 0.9 and best.side > 0.6 * min(photo.shape[:2])
    eye_a, eye_b, nose, mouth_a, mouth_b = best.landmarks
    assert eye_a[0] < nose[0] < eye_b[0] and mouth_a[0] < mouth_b[0]  # the template's order
    assert max(eye_a[1], eye_b[1]) < nose[1] < min(mouth_a[1], mouth_b[1])
    assert all(left - 5 <= x <= right + 5 and top - 5 <= y <= bottom + 5 for x, y in best.landmarks)


def test_alignment_matches_opencvs_own() -> None:
    import cv2

    from facesearch.embedding.onnx_runtime import OnnxEncoder

    recognizer = cv2.FaceRecognizerSF.create(str(SFACE), "")
    detector = cv2.FaceDetectorYN.create(str(YUNET), "", (320, 320), 0.6)
    ours_all, theirs_all = [], []
    for person in PEOPLE:
        photo = rgb(IMAGES / person / f"{person}_0002.jpg")
        bgr = cv2.cvtColor(photo, cv2.COLOR_RGB2BGR)
        detector.setInputSize((photo.shape[1], photo.shape[0]))
        row = detector.detect(bgr)[1][0]
        theirs_all.append(cv2.cvtColor(recognizer.alignCrop(bgr, row), cv2.COLOR_BGR2RGB))
        ours_all.append(align(photo, row[4:14].reshape(5, 2), 112))
    ours, theirs = np.stack(ours_all), np.stack(theirs_all)
    encoder = OnnxEncoder(SFACE)
    cosines = np.sum(encoder.embed_faces(ours.transpose(0, 3, 1, 2)) * encoder.embed_faces(theirs.transpose(0, 3, 1, 2)), axis=1)
    assert cosines.min() > 0.97  # the same face to SFace (different people score about 0.1)
    assert np.abs(ours.astype(int) - theirs.astype(int)).mean() < 12


@pytest.fixture(scope="module")
def sface_gallery(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SFace + YuNet over the cfp-dev gallery photos of a few people."""
    home = tmp_path_factory.mktemp("sface-home")
    gallery = tmp_path_factory.mktemp("sface-gallery")
    for person in PEOPLE:
        (gallery / person).symlink_to(KNOWN / person)
    with Gallery(home, detector=f"yunet:{YUNET}") as g:
        report = g.enroll(gallery, model=SFACE)
        assert report.enrolled == 3 * len(PEOPLE) and not report.failed
    return home


def unenrolled_photo(person: str) -> Path:
    enrolled = {p.read_bytes() for p in (KNOWN / person).iterdir()}
    return next(p for p in sorted((IMAGES / person).iterdir())[:10] if p.read_bytes() not in enrolled)


def test_three_people_side_by_side_are_each_named(sface_gallery: Path, tmp_path: Path) -> None:
    people = PEOPLE[:3]
    crops = [Image.open(unenrolled_photo(p)).convert("RGB").resize((220, 220)) for p in people]
    canvas = Image.new("RGB", (3 * 260 + 40, 320), (235, 235, 230))
    for number, crop in enumerate(crops):
        canvas.paste(crop, (40 + 260 * number, 50))
    canvas.save(tmp_path / "three.jpg", quality=92)
    with Gallery(sface_gallery) as g:
        result = g.query(tmp_path / "three.jpg")
    named = sorted(result.faces, key=lambda f: f.box[0])  # left to right
    assert [f.identity for f in named] == people
    assert all(f.face is not None and f.face.score > 0.6 for f in named)


def test_a_small_face_in_a_large_frame_answers_as_its_crop(sface_gallery: Path, tmp_path: Path) -> None:
    photo = unenrolled_photo(PEOPLE[4])
    crop = Image.open(photo).convert("RGB")
    frame = Image.new("RGB", (1024, 768), (60, 90, 120))
    frame.paste(crop.resize((150, round(150 * crop.height / crop.width))), (700, 420))
    frame.save(tmp_path / "frame.jpg", quality=92)
    with Gallery(sface_gallery) as g:
        alone, small = g.query(photo), g.query(tmp_path / "frame.jpg")
    assert alone.identity == small.identity == PEOPLE[4]
    assert len(small.faces) == 1 and small.faces[0].box[0] > 650
    assert small.score == pytest.approx(alone.score, abs=0.08)


def test_the_exported_reference_matches_torch_on_real_crops(tmp_path: Path) -> None:
    from facesearch.models.reference import REFERENCE_FILE

    out = cli_json("export", REFERENCE_FILE, "--onnx", tmp_path / "reference.onnx", "--check", KNOWN)
    assert out["check"]["faces"] == 256 and out["check"]["min_cosine"] > 0.9999


@pytest.mark.slow
@needs_datasets(CFP / "verification" / "unknown_dev")
def test_sface_through_facesearch_scores_as_opencvs_pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's bar: within about 0.01 of OpenCV's own pipeline (0.8947 open-set accuracy
    at the tuned threshold, 0.940 rank-1) means detection and alignment are right."""
    monkeypatch.setenv("FACESEARCH_HOME", str(tmp_path / "home"))
    detector = f"yunet:{YUNET}"
    assert cli_json("enroll", KNOWN, "--model", SFACE, "--detector", detector)["enrolled"] == 600
    result = cli_json("bench", CFP / "verification" / "unknown_dev", "--tune")
    assert result["detector"] == detector and result["no_face"] <= 5
    assert result["accuracy_at_tuned"] >= 0.88 and result["rank1"] >= 0.93


def test_a_student_learns_from_sface_on_aligned_faces(tmp_path: Path) -> None:
    """The ONNX teacher path end to end: real photos detected and aligned once, SFace's
    targets cached, the student bound to detection + alignment."""
    from facesearch.models import load_encoder
    from facesearch.training import TrainConfig, train
    from facesearch.training.augment import AugmentConfig

    data = tmp_path / "people"
    for name in PEOPLE[:4]:
        (data / name).mkdir(parents=True)
        for photo in sorted((KNOWN / name).iterdir()):
            (data / name / photo.name).symlink_to(photo)
    config = TrainConfig(
        data=str(data), out=str(tmp_path / "student.pt"), epochs=3, arcface_epochs=0, batch_size=12,
        optimizer="adamw", lr=0.003, warmup_epochs=0.0, holdout=0.0, workers=0, embedding_dim=128,
        alignment="arcface-5pt", teacher=str(SFACE), identity_weight=0.0, face_cache=str(tmp_path / "faces.pt"),
        augment=AugmentConfig(hflip=True, resized_crop=False, color_jitter=False),
    )
    report = train(config)
    cosines = [r.teacher_cosine for r in report.history]
    assert cosines[-1] > cosines[0], cosines
    taught = report.to_dict()["taught"]
    assert taught["no_face"] == 0 and taught["cache"]["faces"] == 12 and taught["cache"]["seconds"]["teacher"] > 0
    encoder, _ = load_encoder(config.out)
    assert encoder.preprocessing.alignment == "arcface-5pt" and encoder.preprocessing.detect
