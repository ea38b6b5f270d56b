"""On real photos (cfp-dev/verification/known: 600 images of 200 people), when present."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import CFP, cli_json, needs_datasets

KNOWN = CFP / "verification" / "known"

pytestmark = [needs_datasets(KNOWN), pytest.mark.realdata]


def test_enroll_query_remove_rebuild_on_cfp_known(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACESEARCH_MODEL")  # the shipped reference, on the real photos it is for
    first = cli_json("enroll", KNOWN)
    assert (first["enrolled"], first["skipped"], first["failed"]) == (600, 0, [])
    assert (first["identities"], first["faces"]) == (200, 600)
    second = cli_json("enroll", KNOWN)
    assert (second["enrolled"], second["skipped"]) == (0, 600)

    person = sorted(KNOWN.iterdir())[7]
    image = sorted(person.iterdir())[1]
    q = cli_json("query", image, "--top-k", 5)
    assert q["identity"] == person.name and q["score"] == pytest.approx(1.0, abs=1e-4)

    probes = [sorted(p.iterdir())[0] for p in sorted(KNOWN.iterdir())[:40]]
    before = [cli_json("query", p, "--top-k", 3) for p in probes]
    (home / "index.faiss").unlink()
    after = [cli_json("query", p, "--top-k", 3) for p in probes]
    assert after == before

    assert cli_json("remove", person.name) == {"removed": person.name, "faces": 3}
    q = cli_json("query", image, "--top-k", 200)
    assert person.name not in [m["identity"] for m in q["matches"]]
    assert cli_json("info")["faces"] == 597


@needs_datasets(CFP / "pairs.txt")
def test_the_shipped_reference_encoder_scores_what_its_file_records() -> None:
    """The reference's recorded validation figure (its training run, fp32) is reproduced by
    `bench --pairs` on the shipped fp16 file: weights, preprocessing and metric agree."""
    from facesearch.models.encoder import read_model_file
    from facesearch.models.reference import REFERENCE_FILE

    meta = read_model_file(REFERENCE_FILE)["meta"]
    pairs = CFP / Path(meta["recipe"]["val_pairs"]).name  # the pairs file its run validated on
    result = cli_json("bench", "--pairs", pairs, "--images", CFP / "images", "--model", REFERENCE_FILE)
    assert result["pairs"] == 3000
    assert result["roc_auc"] == pytest.approx(meta["validation"]["roc_auc"], abs=1e-3)


@needs_datasets(CFP / "verification" / "unknown_dev")
def test_an_untuned_gallery_decides_at_a_threshold_that_travels(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 27's bars on cfp-dev: the shipped reference states its calibration, so a new
    gallery answers within 0.03 of the tuned accuracy with no labels; `threshold --fpir 0.05`,
    from the gallery's own photos, names between 2.5% and 10% of the 150 stranger probes."""
    monkeypatch.delenv("FACESEARCH_MODEL")
    probes = CFP / "verification" / "unknown_dev"
    cli_json("enroll", KNOWN)
    assert cli_json("threshold")["threshold_source"] == "encoder"
    untuned = cli_json("bench", probes, "--tune")
    assert untuned["accuracy"] >= untuned["accuracy_at_tuned"] - 0.03
    estimate = cli_json("threshold", "--fpir", 0.05)
    assert estimate["estimated_from"] == 600
    assert 0.025 <= cli_json("bench", probes)["fpir"] <= 0.10


def test_verify_gives_bench_pairs_scores_on_cfp_pairs(home: Path) -> None:
    """`verify` (each photo's largest face) scores a pair as `bench --pairs` does: the first 60
    of cfp-dev's frontal pairs, the shipped encoder (all 3,000, and the profile pairs, in
    benchmarks/verify_pairs.py: at most 1.8e-7 apart)."""
    from facesearch.embedding.encoders import load_model
    from facesearch.embedding.face_finding.prepare import preparer_for
    from facesearch.evaluation.verification import Pairs, pair_vectors, read_pairs
    from facesearch.gallery.engine import Gallery
    from facesearch.models.reference import default_model

    every = read_pairs(CFP / "pairs.txt", CFP / "images")
    pairs = Pairs(every.images, every.left[:60], every.right[:60], every.same[:60], every.folds[:60])
    encoder, _ = load_model(default_model(), "cpu")
    expected = pairs.scores(pair_vectors(encoder, pairs, preparer_for(encoder.preprocessing, fallback=True))[0])
    with Gallery(home) as gallery:
        scores = [gallery.verify(pairs.images[a], pairs.images[b]).score for a, b in zip(pairs.left, pairs.right)]
    assert scores == pytest.approx(expected.tolist(), abs=1e-5)
