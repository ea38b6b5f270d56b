"""Photos in, every face answered: enroll takes each photo's largest face, query answers
each face of a photo, bench prepares probes the same way (with the planted test detector,
so these tests need no shared data; real detectors: test_realfaces.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facesearch import UNKNOWN
from facesearch.gallery.engine import Gallery
from facesearch.errors import ImageError
from facesearch.models import EncoderConfig, build_encoder, save_encoder
from tests import badfiles, planted
from tests.conftest import cli, cli_json

PEOPLE = [f"person_{i:04d}" for i in range(6)]


@pytest.fixture(scope="module")
def photos(faces_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A gallery of photos: each person's face pasted somewhere on a white canvas; one photo
    also shows a smaller second person; one photo shows nobody."""
    root = tmp_path_factory.mktemp("photos")
    for number, person in enumerate(PEOPLE):
        (root / person).mkdir()
        faces = [(faces_dir / person / "0000.jpg", (40 + 30 * number, 60, 160))]
        if person == "person_0001":
            faces.append((faces_dir / "person_0007" / "0000.jpg", (420, 200, 70)))
        planted.compose(faces).save(root / person / "photo.png")
    (root / "nobody").mkdir()
    Image.new("RGB", (320, 240), planted.WHITE).save(root / "nobody" / "empty.png")
    return root


@pytest.fixture
def gallery(home: Path, photos: Path) -> Gallery:
    g = Gallery(home, detector="planted")
    g.enroll(photos)
    yield g
    g.close()


def group_photo(faces_dir: Path, path: Path, people: list[str], sides: list[int]) -> Path:
    left, placed = 10, []
    for person, side in zip(people, sides):
        placed.append((faces_dir / person / "0000.jpg", (left, 300 - side // 2, side)))
        left += side + 30
    planted.compose(placed, (1024, 600)).save(path)
    return path


def test_enroll_takes_each_photos_largest_face_and_reports_the_rest(home: Path, photos: Path) -> None:
    out = cli_json("enroll", photos, "--detector", "planted")
    assert (out["enrolled"], out["identities"]) == (6, 6)
    [several] = out["several_faces"]
    assert several["path"].endswith("person_0001/photo.png") and several["faces"] == 2
    assert several["taken"]["box"] == pytest.approx([70, 60, 230, 220], abs=2)  # the larger face
    [failed] = out["failed"]
    assert failed["path"].endswith("nobody/empty.png") and "no face found" in failed["error"]


def test_every_face_of_a_photo_is_answered_largest_first(gallery: Gallery, faces_dir: Path, tmp_path: Path) -> None:
    people = ["person_0003", "person_0000", "person_0005"]
    photo = group_photo(faces_dir, tmp_path / "group.png", people, [120, 200, 90])
    result = gallery.query(photo, top_k=2)
    assert [f.identity for f in result.faces] == ["person_0000", "person_0003", "person_0005"]
    assert [round(f.face.side) for f in result.faces] == [200, 120, 90]
    assert all(f.score > 0.9 for f in result.faces)
    assert (result.identity, result.score, result.matches) == (
        result.faces[0].identity, result.faces[0].score, result.faces[0].matches)


def test_query_json_contract_with_several_faces(gallery: Gallery, faces_dir: Path, tmp_path: Path) -> None:
    photo = group_photo(faces_dir, tmp_path / "group.png", ["person_0002", "person_0004"], [150, 100])
    q = cli_json("query", photo, "--top-k", 3)  # the gallery's enroll detector: planted
    assert set(q) == {"identity", "score", "threshold", "matches", "faces"}
    assert [f["identity"] for f in q["faces"]] == ["person_0002", "person_0004"]
    first = q["faces"][0]
    assert set(first) == {"box", "landmarks", "detection_score", "identity", "score", "matches"}
    assert len(first["box"]) == 4 and len(first["landmarks"]) == 5 and first["detection_score"] == 0.99
    assert q["identity"] == first["identity"] and q["matches"] == first["matches"]
    assert len(cli_json("query", photo, "--max-faces", 1)["faces"]) == 1


def test_no_face_and_too_small_faces_are_one_line_errors(gallery: Gallery, photos: Path, faces_dir: Path, tmp_path: Path) -> None:
    out = cli_json("query", photos / "nobody" / "empty.png", code=1)
    assert "no face found" in out["error"] and "empty.png" in out["error"]
    photo = group_photo(faces_dir, tmp_path / "small.png", ["person_0002"], [60])
    out = cli_json("query", photo, "--min-face", 100, code=1)
    assert "no face of at least 100 px" in out["error"]
    assert gallery.identities() and len(gallery.identities()) == 6  # nothing stored was touched


def test_awkward_modes_go_through_detection(gallery: Gallery, faces_dir: Path, tmp_path: Path) -> None:
    photo = Image.open(group_photo(faces_dir, tmp_path / "rgb.png", ["person_0004"], [180]))
    variants = {
        "grey.png": photo.convert("L"),
        "grey16.png": Image.fromarray(np.asarray(photo.convert("L"), np.uint16) * 257),
        "cmyk.jpg": photo.convert("CMYK"),
        "palette.png": photo.convert("P"),
        "alpha.png": photo.convert("RGBA"),
    }
    for name, image in variants.items():
        image.save(tmp_path / name)
        result = gallery.query(tmp_path / name)
        assert len(result.faces) == 1, name
        if name != "grey16.png" and name != "grey.png":  # colour lost: still a face, maybe another answer
            assert result.identity == "person_0004", name


def test_decode_limits_hold_before_detection(gallery: Gallery, tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="decompression bomb"):
        gallery.query(badfiles.png_bomb(tmp_path / "bomb.png"))


def test_the_gallery_remembers_its_enroll_detector(gallery: Gallery, home: Path, faces_dir: Path, tmp_path: Path) -> None:
    assert gallery.info()["detector"] == "planted"
    photo = group_photo(faces_dir, tmp_path / "two.png", ["person_0001", "person_0003"], [150, 140])
    with Gallery(home) as again:  # no detector given: the enroll's
        assert len(again.query(photo).faces) == 2
    with Gallery(home, detector="none") as crops:  # --no-detect: the whole photo is the face
        [whole] = crops.query(photo).faces
        assert whole.face is None and whole.box == (0.0, 0.0, 1024.0, 600.0)


def test_bench_prepares_probes_like_queries_and_counts_faceless_ones(gallery: Gallery, faces_dir: Path, tmp_path: Path) -> None:
    from facesearch.evaluation.bench import run_open_set

    probes = tmp_path / "probes"
    probes.mkdir()
    rows = ["id,label"]
    for number, person in enumerate(["person_0000", "person_0002", "person_0007"]):
        group_photo(faces_dir, probes / f"{number:06d}.png", [person], [140])
        rows.append(f"{number:06d}.png,{person if person != 'person_0007' else UNKNOWN}")
    Image.new("RGB", (200, 200), planted.WHITE).save(probes / "000003.png")
    rows.append(f"000003.png,{UNKNOWN}")
    (probes / "verification_dev.csv").write_text("\n".join(rows) + "\n")
    report, results = run_open_set(gallery, probes)
    assert report["probes"] == 4 and report["detector"] == "planted"
    assert report["no_face"] == 1 and "whole photo" in report["no_face_action"]
    assert report["rank1"] == 1.0


def test_an_aligned_encoder_aligns_every_face(home: Path, photos: Path, faces_dir: Path, tmp_path: Path) -> None:
    model = tmp_path / "aligned.pt"
    config = EncoderConfig(backbone="mobilenet_v3_small", embedding_dim=64, alignment="arcface-5pt", detect=True)
    save_encoder(build_encoder(config, "cpu"), model)
    crop_model = tmp_path / "crop.pt"
    save_encoder(build_encoder(EncoderConfig(backbone="mobilenet_v3_small", embedding_dim=64), "cpu"), crop_model)
    with Gallery(home, detector="planted") as g:
        g.enroll(photos, model=model)
        assert g.info()["model"]["alignment"] == "arcface-5pt"
        fp = g.info()["model"]["fingerprint"]
    from facesearch.models.encoder import load_encoder

    assert fp != load_encoder(crop_model)[1]  # the preparation is part of the fingerprint
    photo = group_photo(faces_dir, tmp_path / "pair.png", ["person_0005", "person_0001"], [170, 120])
    assert cli_json("query", photo)["faces"][0]["identity"] == "person_0005"


def test_contradicting_detector_options_are_bad_usage(home: Path, photos: Path) -> None:
    result = cli("query", photos / "nobody" / "empty.png", "--no-detect", "--detector", "mtcnn")
    assert result.exit_code == 2
