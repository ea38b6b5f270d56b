"""A threshold a user can trust without labels (facesearch.gallery.calibration): the encoder's
stated calibration, the gallery's own label-free estimate (`threshold --fpir`), and the
observed FPIR / FNIR that bench reports."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from facesearch import UNKNOWN
from facesearch.gallery.calibration import stranger_scores, threshold_at
from facesearch.gallery.engine import Gallery
from facesearch.models import EncoderConfig, build_encoder, save_encoder
from facesearch.synthetic import write_dataset, write_probes
from tests.conftest import cli_json


def test_the_threshold_names_at_most_the_rate_of_strangers() -> None:
    scores = np.linspace(0.0, 0.99, 100)
    for rate in (0.01, 0.05, 0.1, 0.5):
        t = threshold_at(scores, rate)
        assert np.sum(scores >= t) == int(rate * 100)  # a query is named when score >= threshold
        assert np.sum(scores >= np.nextafter(t, -1) - 1e-9) > int(rate * 100)  # and no lower one would do


def test_a_new_gallery_estimates_its_threshold_once_it_has_two_people(home: Path, faces_dir: Path, tmp_path: Path) -> None:
    one = tmp_path / "one"
    shutil.copytree(faces_dir / "person_0001", one / "person_0001")
    with Gallery(home) as gallery:
        gallery.enroll(one)
        assert gallery.decision()["threshold_source"] == "default"  # nobody to be a stranger to
        gallery.enroll(faces_dir)
        decision = gallery.decision()
        assert decision["threshold_source"] == "fpir" and decision["threshold"] != 0.5
        assert gallery.info()["threshold_source"] == "fpir"


def test_threshold_fpir_is_where_that_share_of_strangers_gets_a_name(home: Path, faces_dir: Path) -> None:
    cli_json("enroll", faces_dir)
    out = cli_json("threshold", "--fpir", 0.25)
    assert set(out) == {"threshold", "threshold_source", "fpir", "estimated_from", "estimated_fpir"}  # fpir: the rate held
    assert out["threshold_source"] == "fpir" and out["fpir"] == 0.25 and out["estimated_from"] == 24  # one per photo
    with Gallery(home) as gallery:
        with gallery.index.memory:
            scores = stranger_scores(gallery.index.for_query(), gallery.store, "nearest")
    assert np.mean(scores >= out["threshold"]) <= 0.25 < np.mean(scores >= out["threshold"] - 1e-6) + 1e-9
    assert out["estimated_fpir"] == round(float(np.mean(scores >= out["threshold"])), 4)
    assert cli_json("threshold") == out


def test_a_large_gallery_is_estimated_from_the_same_sample_each_time(home: Path, faces_dir: Path) -> None:
    cli_json("enroll", faces_dir)
    with Gallery(home) as gallery, gallery.index.memory:
        index, store = gallery.index.for_query(), gallery.store
        whole = stranger_scores(index, store, "nearest")
        sample = stranger_scores(index, store, "nearest", most=10)
        assert len(whole) == 24 and len(sample) == 10
        assert np.array_equal(sample, stranger_scores(index, store, "nearest", most=10))
        assert np.abs(sample[:, None] - whole[None, :]).min(axis=1).max() < 1e-5  # scores of the same queries


def test_the_stranger_queries_are_answered_once_for_each_state_of_the_gallery(
    home: Path, faces_dir: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Estimating and then reporting (`threshold --fpir`) answers the strangers once; a change
    of people or of scoring rule answers them again."""
    from facesearch.gallery import calibration

    answered = []
    real = calibration.stranger_scores
    monkeypatch.setattr(calibration, "stranger_scores", lambda *a, **k: answered.append(1) or real(*a, **k))
    with Gallery(home) as gallery:
        gallery.enroll(faces_dir)  # calibrates: the encoder states nothing, so estimated at 0.10
        gallery.set_threshold_at_fpir(0.25)
        report = gallery.threshold_report()
        assert len(answered) == 1 and report["estimated_fpir"] <= 0.25
        gallery.rename("person_0001", "person_0002")  # one person fewer: other strangers
        gallery.threshold_report()
        assert len(answered) == 2
        gallery.set_scoring("mean")  # estimated again at its rate, under the new rule
        gallery.threshold_report()
        assert len(answered) == 3


def test_a_rate_is_estimated_again_once_the_people_change_by_a_tenth() -> None:
    from facesearch.gallery.calibration import stale

    assert stale(None, 2) and stale(2, 3) and stale(100, 110) and stale(100, 90)
    assert not stale(100, 105) and not stale(100, 100) and not stale(3, 1) and not stale(None, 1)


def test_a_threshold_set_at_a_rate_follows_the_gallery_as_it_grows(home: Path, faces_dir: Path, tmp_path: Path) -> None:
    """A gallery of two people has few strangers to measure; each enroll estimates the line
    again at the rate it holds, from all the photos there are then."""
    few = tmp_path / "few"
    for person in ("person_0001", "person_0002"):
        shutil.copytree(faces_dir / person, few / person)
    with Gallery(home) as gallery:
        gallery.enroll(few)
        assert gallery.threshold_report()["fpir"] == 0.1  # the encoder states none: estimated at 0.10
        gallery.enroll(faces_dir)
        assert gallery.decision()["threshold"] == gallery.estimate_threshold(0.1).threshold
        gallery.set_threshold_at_fpir(0.25)
        gallery.set_scoring("mean")  # estimated again under the new rule, at the rate it holds
        report = gallery.threshold_report()
        assert (report["threshold_source"], report["fpir"]) == ("fpir", 0.25)
        assert report["threshold"] == gallery.estimate_threshold(0.25).threshold
        gallery.set_threshold(0.42)  # by hand: kept as it is, whatever is enrolled
        write_dataset(tmp_path / "more", identities=2, images_per_identity=3, seed=9, first_identity=40)
        gallery.enroll(tmp_path / "more")
        assert "fpir" not in gallery.threshold_report() and gallery.decision()["threshold"] == 0.42


@pytest.mark.parametrize("rate", ["0", "1", "1.5", "-0.1", "nan"])
def test_a_rate_outside_0_1_changes_nothing(home: Path, faces_dir: Path, rate: str) -> None:
    cli_json("enroll", faces_dir)
    cli_json("threshold", "0.42")
    error = cli_json("threshold", "--fpir", rate, code=1)["error"]
    assert "strictly between 0 and 1" in error
    assert cli_json("threshold").items() >= {"threshold": 0.42, "threshold_source": "manual"}.items()


def test_one_person_has_no_strangers(home: Path, faces_dir: Path, tmp_path: Path) -> None:
    one = tmp_path / "one"
    shutil.copytree(faces_dir / "person_0002", one / "person_0002")
    cli_json("enroll", one)
    assert "at least two" in cli_json("threshold", "--fpir", 0.05, code=1)["error"]
    assert cli_json("threshold") == {"threshold": 0.5, "threshold_source": "default"}


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small ONNX encoder whose sidecar states a calibration."""
    folder = tmp_path_factory.mktemp("calibrated")
    save_encoder(build_encoder(EncoderConfig(backbone="mobilenet_v3_small", embedding_dim=32), "cpu"), folder / "m.pt")
    onnx = Path(cli_json("export", folder / "m.pt", "--onnx", folder / "m.onnx")["onnx"])
    sidecar = onnx.with_name("m.onnx.json")
    body = json.loads(sidecar.read_text())
    body["calibration"] = {"threshold": 0.3141, "fpir": 0.1, "scoring": "nearest", "flip": False,
                           "measured_on": "a test"}
    sidecar.write_text(json.dumps(body))
    return onnx


def test_a_gallery_starts_at_its_encoders_stated_threshold(home: Path, faces_dir: Path, calibrated: Path) -> None:
    cli_json("enroll", faces_dir, "--model", calibrated)
    assert cli_json("threshold").items() >= {"threshold": 0.3141, "threshold_source": "encoder"}.items()
    assert cli_json("info")["threshold_source"] == "encoder"
    cli_json("scoring", "mean")  # measured under nearest: not the encoder's figure for templates
    assert cli_json("threshold")["threshold_source"] == "fpir"


def test_threshold_says_what_it_means_on_the_gallerys_own_photos(
    home: Path, faces_dir: Path, calibrated: Path, tmp_path: Path,
) -> None:
    """An encoder's threshold was measured on other photos: where this gallery's own strangers
    would be named far more often than it states, `threshold` says so."""
    loose = tmp_path / "loose.onnx"
    shutil.copy(calibrated, loose)
    body = json.loads(calibrated.with_name("m.onnx.json").read_text())
    body["calibration"]["threshold"] = -1.0  # names everyone: FPIR 1 on any photos, against the 0.1 stated
    loose.with_name("loose.onnx.json").write_text(json.dumps(body))
    cli_json("enroll", faces_dir, "--model", loose)
    shown = cli_json("threshold")
    assert (shown["threshold_source"], shown["estimated_fpir"], shown["estimated_from"]) == ("encoder", 1.0, 24)
    assert "`facesearch threshold --fpir 0.1`" in shown["note"]
    cli_json("threshold", "1.0")  # set by hand: what it means is still said, with no advice
    shown = cli_json("threshold")
    assert shown["estimated_fpir"] == 0.0 and "note" not in shown


def test_a_stated_threshold_for_another_flip_setting_is_not_used(home: Path, faces_dir: Path, calibrated: Path) -> None:
    cli_json("enroll", faces_dir, "--model", calibrated, "--flip")
    assert cli_json("threshold")["threshold_source"] == "fpir"


def test_bench_reports_fpir_and_fnir_at_the_threshold_used(home: Path, faces_dir: Path, tmp_path: Path) -> None:
    cli_json("enroll", faces_dir)
    probes = write_probes(tmp_path / "probes", identities=12, enrolled=8, seed=1, first_sample=3)  # 4 strangers
    labels = dict(row.split(",") for row in (tmp_path / "probes" / "verification_dev.csv").read_text().split()[1:])
    report = cli_json("bench", probes, "--report", tmp_path / "report")
    rows = [line.split(",") for line in (tmp_path / "report" / "probes.csv").read_text().split()[1:]]
    strangers = [r for r in rows if r[1] == UNKNOWN]
    enrolled = [r for r in rows if r[1] != UNKNOWN]
    assert len(strangers) == 4 and len(enrolled) == 8 and len(labels) == 12
    assert report["fpir"] == pytest.approx(sum(r[4] != UNKNOWN for r in strangers) / 4)
    assert report["fnir"] == pytest.approx(sum(r[4] != r[1] for r in enrolled) / 8)
    cli_json("threshold", "1.0")
    assert cli_json("bench", probes)["fpir"] == 0.0  # nobody is named at a threshold no stranger reaches
