"""Gallery scoring rules served through the index (facesearch.gallery.scoring): ``nearest`` (the
default, HW2P2's) and ``mean`` (each person's template), held to the exhaustive numpy rules
of facesearch.evaluation.bench; the setting, its CLI and what it says about the threshold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facesearch.evaluation.bench import identity_scores
from facesearch.gallery.engine import Gallery
from facesearch.errors import InputError
from facesearch.gallery.scoring import template
from tests.conftest import cli, cli_json


@pytest.fixture
def gallery(home: Path, faces_dir: Path) -> Gallery:
    cli_json("enroll", faces_dir)
    with Gallery(home) as opened:
        yield opened


def _exhaustive(gallery: Gallery, queries: np.ndarray, rule: str) -> tuple[np.ndarray, np.ndarray]:
    state, ids = gallery.store.snapshot_ids()
    ids, stored = gallery.store.embeddings(ids, state.dim)
    records = gallery.store.faces(ids.tolist())
    return identity_scores(queries, stored, np.array([records[int(i)].identity for i in ids]), rule)


@pytest.mark.parametrize("rule", ["nearest", "mean"])
def test_each_rule_answers_as_its_exhaustive_form(gallery: Gallery, rule: str) -> None:
    rng = np.random.default_rng(0)
    state, ids = gallery.store.snapshot_ids()
    _, stored = gallery.store.embeddings(ids, state.dim)
    queries = stored[::3] + 0.3 * rng.standard_normal(stored[::3].shape).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    gallery.set_scoring(rule)
    people, similarities = _exhaustive(gallery, queries, rule)
    for result, row in zip(gallery.search(queries, top_k=3), similarities):
        best = np.argsort(-row)[:3]
        assert [m.identity for m in result.matches] == people[best].tolist()
        assert [m.score for m in result.matches] == pytest.approx(row[best].tolist(), abs=1e-5)


def test_mean_scores_a_person_by_their_template_and_keeps_their_nearest_image(gallery: Gallery, faces_dir: Path) -> None:
    probe = sorted((faces_dir / "person_0002").iterdir())[0]
    nearest = gallery.query(probe, top_k=2)
    gallery.set_scoring("mean")
    mean = gallery.query(probe, top_k=2)
    assert mean.identity == nearest.identity == "person_0002"
    assert mean.score < nearest.score == pytest.approx(1.0, abs=1e-4)  # the photo itself is enrolled
    assert mean.matches[0].image == nearest.matches[0].image  # the image shown is still the nearest
    state, ids = gallery.store.snapshot_ids()
    vectors = gallery.store.identity_embeddings(["person_0002"], state.dim)["person_0002"]
    assert len(vectors) == 3
    query_vector = gallery.store.embeddings(
        [i for i, r in gallery.store.faces(ids.tolist()).items() if r.source_path == nearest.matches[0].image], state.dim)[1][0]
    assert mean.score == pytest.approx(float(template(vectors) @ query_vector), abs=1e-5)


def test_a_removed_person_leaves_the_templates(gallery: Gallery, faces_dir: Path) -> None:
    gallery.set_scoring("mean")
    probe = sorted((faces_dir / "person_0005").iterdir())[1]
    assert gallery.query(probe).identity == "person_0005"
    gallery.remove("person_0005")
    answer = gallery.query(probe, top_k=8)
    assert "person_0005" not in [m.identity for m in answer.matches] and len(answer.matches) == 7


def test_the_rule_is_a_gallery_setting(gallery: Gallery, home: Path) -> None:
    assert gallery.decision()["scoring"] == "nearest" and gallery.info()["scoring"] == "nearest"
    with pytest.raises(InputError, match="unknown scoring rule 'median'"):
        gallery.set_scoring("median")
    before = cli_json("scoring")
    assert before["scoring"] == "nearest" and before["threshold_source"] == "fpir"
    after = cli_json("scoring", "mean")  # a label-free threshold is estimated again under the new rule
    assert "note" not in after and after["threshold_source"] == "fpir"
    with Gallery(home) as again:
        assert again.decision()["scoring"] == "mean"
    assert cli_json("info")["scoring"] == "mean"


def test_changing_the_rule_says_the_tuned_threshold_is_for_the_other(gallery: Gallery) -> None:
    gallery.set_threshold(0.61, source="tuned")
    changed = cli_json("scoring", "mean")
    assert changed["threshold"] == 0.61 and "tuned under nearest" in changed["note"]
    assert "note" not in cli_json("scoring", "mean")  # no change, nothing to say
    assert cli("scoring", "median").exit_code == 2  # bad usage
