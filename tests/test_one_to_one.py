"""1:1 verification and embeddings out (`facesearch verify`, `facesearch embed`,
`query --embedding`): the same vectors a query uses, the same score bench --pairs gives, and
every bad input refused with its reason."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facesearch.evaluation.verification import read_pairs
from facesearch.synthetic import write_pairs
from tests.conftest import CROP_ENCODER, cli_json


def test_embed_gives_every_face_and_the_fingerprint(home: Path, faces_dir: Path) -> None:
    photo = faces_dir / "person_0003" / "0001.jpg"
    out = cli_json("embed", photo)
    assert set(out) == {"model", "faces"} and len(out["model"]["fingerprint"]) == 64
    [face] = out["faces"]  # a crop encoder: the whole photo is the face
    assert set(face) == {"box", "landmarks", "detection_score", "embedding"} and len(face["embedding"]) == 512
    assert np.linalg.norm(face["embedding"]) == pytest.approx(1.0, abs=1e-5)
    assert cli_json("info")["faces"] == 0  # embedding binds and stores nothing


def test_an_embedding_queries_as_its_photo_does(home: Path, faces_dir: Path, tmp_path: Path) -> None:
    cli_json("enroll", faces_dir)
    photo = faces_dir / "person_0006" / "0002.jpg"
    saved = tmp_path / "face.json"
    saved.write_text(json.dumps(cli_json("embed", photo)))
    by_photo, by_vector = cli_json("query", photo), cli_json("query", "--embedding", saved)
    assert by_vector["identity"] == by_photo["identity"] == "person_0006"
    assert by_vector["matches"] == by_photo["matches"]
    vector = np.asarray(json.loads(saved.read_text())["faces"][0]["embedding"], np.float32)
    np.save(tmp_path / "face.npy", vector)
    assert cli_json("query", "--embedding", tmp_path / "face.npy")["identity"] == "person_0006"


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ([0.5] * 7, "this gallery's encoder gives 512 numbers"),
        ([float("nan")] + [0.0] * 511, "NaN"),
        ([1.0] * 512, "not 1"),
        ("not a vector", "512"),
    ],
)
def test_a_bad_embedding_is_refused_with_the_dimension(home: Path, faces_dir: Path, tmp_path: Path, content: object, says: str) -> None:
    cli_json("enroll", faces_dir)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(content).replace("NaN", "NaN"))
    error = cli_json("query", "--embedding", bad, code=1)["error"]
    assert says in error and "bad.json" in error


def test_query_needs_a_photo_or_an_embedding(home: Path, faces_dir: Path, tmp_path: Path) -> None:
    assert cli_json("query", code=2)["usage"] is True
    assert cli_json("query", faces_dir / "person_0001" / "0001.jpg", "--embedding", tmp_path / "x.json", code=2)["usage"]


def test_verify_says_same_or_not_with_the_threshold(home: Path, faces_dir: Path) -> None:
    a, b = faces_dir / "person_0002" / "0000.jpg", faces_dir / "person_0002" / "0001.jpg"
    other = faces_dir / "person_0005" / "0000.jpg"
    same = cli_json("verify", a, b, "--threshold", 0.5)
    assert set(same) >= {"same", "score", "threshold"} and same["threshold_source"] == "given"
    different = cli_json("verify", a, other, "--threshold", 0.5)
    assert same["score"] > different["score"]
    assert cli_json("verify", a, a)["score"] == pytest.approx(1.0, abs=1e-5)
    cli_json("enroll", faces_dir)
    cli_json("threshold", "0.77")
    judged = cli_json("verify", a, b)
    assert (judged["threshold"], judged["threshold_source"]) == (0.77, "manual")  # the gallery's, same encoder
    assert judged["same"] == (judged["score"] >= 0.77)


def test_verify_scores_as_bench_pairs_does(home: Path, tmp_path: Path) -> None:
    unseen = tmp_path / "unseen"
    write_pairs(unseen, identities=6, images_per_identity=3, folds=2, per_fold=4, seed=11)
    pairs = read_pairs(unseen / "pairs.txt", unseen / "images")
    report = cli_json("bench", "--pairs", unseen / "pairs.txt", "--images", unseen / "images", "--model", CROP_ENCODER,
                      "--report", tmp_path / "report")
    assert report["task"] == "pairs"
    from facesearch.embedding.encoders import load_model
    from facesearch.embedding.face_finding.prepare import preparer_for
    from facesearch.evaluation.verification import pair_vectors

    encoder = load_model(CROP_ENCODER, "cpu")[0]
    vectors, _ = pair_vectors(encoder, pairs, preparer_for(encoder.preprocessing, fallback=True))
    expected = pairs.scores(vectors)
    for (left, right), score in zip(zip(pairs.left, pairs.right), expected):
        verdict = cli_json("verify", pairs.images[left], pairs.images[right], "--model", CROP_ENCODER)
        assert verdict["score"] == pytest.approx(float(score), abs=1e-6)


def test_verify_on_a_photo_without_a_face_names_it(home: Path, faces_dir: Path, tmp_path: Path) -> None:
    blank = tmp_path / "blank.jpg"
    Image.new("RGB", (160, 120), "white").save(blank)
    reference = Path(__file__).resolve().parents[1] / "facesearch" / "models" / "reference.onnx"
    error = cli_json("verify", blank, faces_dir / "person_0001" / "0000.jpg", "--model", reference, code=1)["error"]
    assert error.startswith(str(blank)) and "no face found" in error
    assert "there is no face 3" in cli_json("verify", blank, blank, "--face-a", 3, code=1)["error"]
