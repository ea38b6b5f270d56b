"""`facesearch bench`: figures recomputed independently from per-probe `query --json` answers."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from facesearch import UNKNOWN
from facesearch.evaluation.bench import compare_scoring, identity_scores
from facesearch.gallery.engine import Gallery
from facesearch.errors import InputError
from facesearch.synthetic import write_dataset, write_pairs
from tests.conftest import cli, cli_json


@pytest.fixture
def probe_set(home: Path, faces_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Gallery: 6 of the 8 synthetic people. Probes: an enrolled photo of 3 of them (certain
    matches), an unseen photo of all 6, and 2 photos of each of the 2 people not enrolled."""
    gallery = tmp_path / "gallery"
    people = sorted(faces_dir.iterdir())
    for person in people[:6]:
        shutil.copytree(person, gallery / person.name)
    cli_json("enroll", gallery)
    probes = tmp_path / "probes"
    probes.mkdir()
    rows = []
    extra = tmp_path / "extra"
    write_dataset(extra, identities=8, images_per_identity=1, seed=1, first_sample=5)

    def add(source: Path, label: str) -> None:
        name = f"{len(rows):06d}.jpg"
        shutil.copy(source, probes / name)
        rows.append((name, label))

    for person in people[:3]:
        add(sorted(person.iterdir())[0], person.name)
    for person in people[:6]:
        add(next((extra / person.name).iterdir()), person.name)
    for person in people[6:]:
        add(sorted(person.iterdir())[0], UNKNOWN)
        add(sorted(person.iterdir())[1], UNKNOWN)
    with (tmp_path / "verification_dev.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([("id", "label"), *rows])
    return probes, tmp_path / "verification_dev.csv"


def test_open_set_figures_match_an_independent_recomputation(probe_set: tuple[Path, Path]) -> None:
    probes, labels_csv = probe_set
    result = cli_json("bench", probes)  # finds verification_dev.csv beside the folder
    labels = dict(csv.reader(labels_csv.open()))
    enrolled = {row["identity"] for row in cli_json("identities")["identities"]}
    answers = {name: cli_json("query", probes / name, "--top-k", 1) for name in sorted(labels) if name != "id"}
    truth = np.array([labels[n] for n in answers])
    predicted = np.array([a["identity"] for a in answers.values()])
    nearest = np.array([a["matches"][0]["identity"] for a in answers.values()])
    score = np.array([a["matches"][0]["score"] for a in answers.values()])
    known = np.isin(truth, list(enrolled))
    positive = known & (nearest == truth)
    negative = truth == UNKNOWN
    assert result["task"] == "open-set" and result["probes"] == len(truth) == 13
    assert result["accuracy"] == float(np.mean(predicted == truth))
    assert result["rank1"] == float(np.mean(nearest[known] == truth[known]))
    in_curve = positive | negative
    assert result["roc_auc"] == float(roc_auc_score(positive[in_curve], score[in_curve]))
    assert result["threshold"] == cli_json("threshold")["threshold"]


def test_tune_stores_the_best_threshold(probe_set: tuple[Path, Path], tmp_path: Path) -> None:
    probes, labels_csv = probe_set
    before = cli_json("bench", probes, "--labels", labels_csv)
    tuned = cli_json("bench", probes, "--labels", labels_csv, "--tune", "--report", tmp_path / "report")
    assert tuned["accuracy_at_tuned"] >= before["accuracy"]
    assert cli_json("threshold")["threshold"] == pytest.approx(tuned["tuned_threshold"])
    after = cli_json("bench", probes, "--labels", labels_csv)
    assert after["accuracy"] == pytest.approx(tuned["accuracy_at_tuned"])
    rows = list(csv.DictReader((tmp_path / "report" / "probes.csv").open()))
    assert len(rows) == 13 and set(rows[0]) == {"id", "label", "nearest", "score", "prediction"}
    for name in ("summary.md", "result.json", "roc.png", "similarities.png"):
        assert (tmp_path / "report" / name).stat().st_size > 0


def test_label_column_only_in_file_name_order(probe_set: tuple[Path, Path], tmp_path: Path) -> None:
    probes, labels_csv = probe_set
    rows = list(csv.DictReader(labels_csv.open()))
    only = tmp_path / "only_labels.csv"
    only.write_text("label\n" + "".join(f"{r['label']}\n" for r in sorted(rows, key=lambda r: r["id"])))
    assert cli_json("bench", probes, "--labels", only) == cli_json("bench", probes, "--labels", labels_csv)


def test_bench_bad_input(probe_set: tuple[Path, Path], tmp_path: Path) -> None:
    probes, _ = probe_set
    short = tmp_path / "short.csv"
    short.write_text("label\nx\n")
    assert "1 labels for 13 probes" in cli_json("bench", probes, "--labels", short, code=1)["error"]
    unlabelled = sorted((tmp_path / "gallery").iterdir())[0]
    assert "no labels" in cli_json("bench", unlabelled, code=1)["error"]
    assert "no such folder" in cli_json("bench", tmp_path / "missing", code=1)["error"]
    assert cli("bench").exit_code == 2
    assert cli("bench", probes, "--pairs", "p.txt").exit_code == 2


def test_pairs_bench_follows_the_contract(tmp_path: Path, home: Path) -> None:
    from facesearch.models import build_encoder, save_encoder

    pairs = write_pairs(tmp_path / "lfw", identities=6, images_per_identity=3, folds=2, per_fold=4)
    model = tmp_path / "m.pt"
    save_encoder(build_encoder(), model)
    result = cli_json(
        "bench", "--pairs", pairs, "--images", tmp_path / "lfw" / "images", "--model", model, "--report", tmp_path / "r"
    )
    for name in ("result.json", "summary.md", "roc.png", "similarities.png"):
        assert (tmp_path / "r" / name).stat().st_size > 0
    assert result["task"] == "pairs" and result["pairs"] == 16
    assert set(result) >= {"roc_auc", "accuracy", "accuracy_std", "tar_at_far"}
    assert set(result["tar_at_far"]) == {"0.01", "0.001"}


def test_submission_has_one_row_per_probe(probe_set: tuple[Path, Path], tmp_path: Path) -> None:
    probes, _ = probe_set
    (probes / "000099.jpg").write_bytes(b"not an image")
    out = tmp_path / "submission.csv"
    result = cli_json("bench", probes, "--submission", out)
    rows = list(csv.DictReader(out.open()))
    assert result["task"] == "submission" and result["probes"] == len(rows) == 14
    assert [r["id"] for r in rows] == sorted(p.name for p in probes.iterdir())
    assert rows[-1]["label"] == UNKNOWN and result["failed"][0]["path"].endswith("000099.jpg")
    for row in rows[:-1]:
        assert row["label"] == cli_json("query", probes / row["id"])["identity"]


def test_identity_scores_nearest_image_and_mean_template() -> None:
    stored = np.array([[1, 0, 0], [0, 1, 0], [0.6, 0.8, 0]], dtype=np.float32)
    names = np.array(["b", "a", "b"])
    queries = np.array([[0, 1, 0], [0.8, 0, 0.6]], dtype=np.float32)
    people, nearest = identity_scores(queries, stored, names, "nearest")
    assert people.tolist() == ["a", "b"]
    assert nearest == pytest.approx(np.array([[1.0, 0.8], [0.0, 0.8]]))
    centre_b = np.array([1.6, 0.8, 0]) / np.linalg.norm([1.6, 0.8, 0])
    _, mean = identity_scores(queries, stored, names, "mean")
    assert mean == pytest.approx(np.array([[1.0, centre_b[1]], [0.0, 0.8 * centre_b[0]]]))
    with pytest.raises(InputError, match="unknown scoring rule"):
        identity_scores(queries, stored, names, "median")


def test_compare_scoring_nearest_rule_reproduces_bench(probe_set: tuple[Path, Path], home: Path) -> None:
    probes, labels_csv = probe_set
    threshold = cli_json("threshold")["threshold"]
    with Gallery(home) as gallery:
        report = compare_scoring(gallery, probes, labels_csv)
    assert cli_json("threshold")["threshold"] == threshold  # comparing rules tunes nothing in the gallery
    bench = cli_json("bench", probes, "--tune")
    assert report["probes"] == bench["probes"] == 13 and report["failed"] == []
    assert report["nearest"]["rank1"] == bench["rank1"]
    assert report["nearest"]["roc_auc"] == pytest.approx(bench["roc_auc"])
    assert report["nearest"]["accuracy_at_tuned"] == pytest.approx(bench["accuracy_at_tuned"])
    assert report["nearest"]["tuned_threshold"] == pytest.approx(bench["tuned_threshold"], abs=1e-6)
    assert set(report["mean"]) == {"rank1", "roc_auc", "tuned_threshold", "accuracy_at_tuned"}
    assert bench["scoring"] == "nearest"
    cli_json("scoring", "mean")
    served = cli_json("bench", probes, "--tune")  # the rule served through the index
    assert served["scoring"] == "mean" and served["rank1"] == report["mean"]["rank1"]
    assert served["roc_auc"] == pytest.approx(report["mean"]["roc_auc"])
    assert served["accuracy_at_tuned"] == pytest.approx(report["mean"]["accuracy_at_tuned"])
