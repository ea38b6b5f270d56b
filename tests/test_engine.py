"""The Gallery engine: enroll, query, remove, and the index-vs-database invariants."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from facesearch import UNKNOWN
from facesearch.gallery.engine import Gallery
from facesearch.errors import GalleryError, InputError, ModelError
from facesearch.index.faiss_file import read_index
from facesearch.index.spec import IndexSpec, ivf_cells, training_size
from facesearch.models import EncoderConfig, build_encoder, save_encoder
from facesearch.synthetic import write_dataset
from tests import badfiles


@pytest.fixture
def gallery(home: Path, database: str, faces_dir: Path) -> Gallery:
    """24 synthetic faces enrolled, on SQLite and on PostgreSQL (see conftest's ``database``)."""
    g = Gallery(home)
    g.enroll(faces_dir)
    yield g
    g.close()


def answers(g: Gallery, faces_dir: Path, top_k: int = 3) -> list[tuple[str, list[tuple[str, float]]]]:
    """Every photo of the folder as a query: (identity, [(match, score)...]) in file order."""
    out = []
    for path in sorted(faces_dir.glob("*/*.jpg")):
        r = g.query(path, top_k=top_k)
        out.append((r.identity, [(m.identity, m.score) for m in r.matches]))
    return out


def same_answers(got: list, expected: list) -> bool:
    """Same identities in the same order; scores equal up to float32 search rounding (the
    exact and approximate kinds sum the same products in different orders)."""
    return [(i, [n for n, _ in m]) for i, m in got] == [(i, [n for n, _ in m]) for i, m in expected] and all(
        s == pytest.approx(t, abs=1e-5) for (_, a), (_, b) in zip(got, expected) for (_, s), (_, t) in zip(a, b)
    )


def test_enroll_is_incremental(home: Path, database: str, faces_dir: Path) -> None:
    with Gallery(home) as g:
        first = g.enroll(faces_dir)
        assert (first.enrolled, first.skipped, first.failed) == (24, 0, [])
        assert (first.identities, first.faces) == (8, 24)
        second = g.enroll(faces_dir)
        assert (second.enrolled, second.skipped) == (0, 24)
    with Gallery(home) as g:  # another process later: still nothing new
        assert g.enroll(faces_dir).enrolled == 0


def test_query_of_an_enrolled_image_finds_it_with_score_1(gallery: Gallery, faces_dir: Path) -> None:
    path = faces_dir / "person_0002" / "0001.jpg"
    result = gallery.query(path, top_k=4)
    assert result.identity == "person_0002"
    assert result.score == pytest.approx(1.0, abs=1e-4)
    assert result.matches[0].image == str(path.resolve())
    names = [m.identity for m in result.matches]
    assert len(names) == 4 == len(set(names))  # top-k lists distinct people
    scores = [m.score for m in result.matches]
    assert scores == sorted(scores, reverse=True)


def test_top_k_larger_than_the_gallery(gallery: Gallery, faces_dir: Path) -> None:
    result = gallery.query(faces_dir / "person_0000" / "0000.jpg", top_k=50)
    assert len(result.matches) == 8


def test_threshold_turns_weak_matches_into_unknown(gallery: Gallery, faces_dir: Path) -> None:
    path = faces_dir / "person_0001" / "0000.jpg"
    gallery.set_threshold(0.9999)
    exact = gallery.query(path)  # an enrolled image: cosine 1 up to float32 rounding
    assert exact.identity == "person_0001" and 1 - 1e-5 < exact.score <= 1.0
    probe = faces_dir.parent / "probe.png"
    badfiles.png_named_jpg(probe)  # an image not in the gallery
    weak = gallery.query(probe)
    assert weak.identity == UNKNOWN and weak.score < 0.9999 and weak.matches
    gallery.set_threshold(weak.score)  # inclusive: a score equal to the threshold matches
    assert gallery.query(probe).identity == weak.matches[0].identity
    gallery.set_threshold(float(np.nextafter(weak.score, 2.0)))
    assert gallery.query(probe).identity == UNKNOWN
    with pytest.raises(InputError):
        gallery.set_threshold(1.5)


def test_remove_leaves_no_trace(gallery: Gallery, faces_dir: Path, home: Path) -> None:
    records = gallery.store.faces(range(1, 25))
    ids = {name: [i for i, r in records.items() if r.identity == name] for name in ("person_0003", "person_0004")}
    embedding = {i: gallery.store.embeddings([i], 512)[1].tobytes() for i in sum(ids.values(), [])}
    assert gallery.remove("person_0003") == 3
    result = gallery.query(faces_dir / "person_0003" / "0000.jpg", top_k=8)
    assert "person_0003" not in [m.identity for m in result.matches]
    assert "person_0003" not in [i["identity"] for i in gallery.identities()]
    assert gallery.store.faces(ids["person_0003"]) == {}
    assert len(gallery.store.embeddings(ids["person_0004"], 512)[0]) == 3
    gallery.close()
    if gallery.store.is_sqlite:  # on PostgreSQL the files are the server's (VACUUM prunes the rows)
        raw = b"".join(p.read_bytes() for p in home.glob("gallery.db*"))
        assert all(embedding[i] in raw for i in ids["person_0004"])  # the check can see embeddings
        assert all(embedding[i] not in raw for i in ids["person_0003"])  # secure_delete + WAL checkpoint
        assert b"person_0003" not in raw
    with Gallery(home) as again, pytest.raises(InputError, match="no identity"):
        again.remove("person_0003")


@pytest.mark.parametrize("damage", ["delete", "truncate", "garbage"])
def test_missing_or_damaged_index_is_rebuilt_with_identical_answers(
    gallery: Gallery, faces_dir: Path, home: Path, damage: str
) -> None:
    before = answers(gallery, faces_dir)
    gallery.close()
    index_file = home / "index.faiss"
    if damage == "delete":
        index_file.unlink()
    elif damage == "truncate":
        index_file.write_bytes(index_file.read_bytes()[:-500])
    else:
        index_file.write_bytes(b"\0" * 1000)
    with Gallery(home) as g:
        assert answers(g, faces_dir) == before
    assert read_index(index_file).ntotal == 24  # repaired on disk too


def test_crash_between_commit_and_index_save_is_repaired(
    home: Path, database: str, faces_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Gallery(home) as g:
        g.enroll(faces_dir)
    more = tmp_path / "more"
    write_dataset(more, identities=2, images_per_identity=2, seed=9, first_identity=50)

    def crash(index: object, path: Path) -> None:
        raise KeyboardInterrupt("power cut")

    with monkeypatch.context() as patched, Gallery(home) as g, pytest.raises(KeyboardInterrupt):
        patched.setattr("facesearch.index.faiss_file.write_index", crash)
        g.enroll(more)
    with Gallery(home) as g:  # the commit stands; the stale index is reconciled
        assert g.counts() == (10, 28)
        result = g.query(more / "person_0050" / "0001.jpg")
        assert result.identity == "person_0050" and result.score == pytest.approx(1.0, abs=1e-4)
        assert g.info()["index"]["up_to_date"]


def test_stale_index_file_from_an_older_state_is_reconciled(
    gallery: Gallery, faces_dir: Path, home: Path, tmp_path: Path
) -> None:
    old = tmp_path / "old.faiss"
    shutil.copy(home / "index.faiss", old)
    gallery.remove("person_0000")
    more = tmp_path / "more"
    write_dataset(more, identities=1, images_per_identity=2, seed=4, first_identity=70)
    gallery.enroll(more)
    gallery.close()
    shutil.copy(old, home / "index.faiss")  # an index that still has person_0000, lacks person_0070
    with Gallery(home) as g:
        names = [m.identity for m in g.query(faces_dir / "person_0000" / "0000.jpg", top_k=10).matches]
        assert "person_0000" not in names
        assert g.query(more / "person_0070" / "0000.jpg").identity == "person_0070"


def test_index_of_another_gallery_is_not_trusted(home: Path, faces_dir: Path, tmp_path: Path) -> None:
    other_home = tmp_path / "other"
    with Gallery(other_home) as other:
        write_dataset(tmp_path / "o", identities=2, images_per_identity=1, seed=7, first_identity=90)
        other.enroll(tmp_path / "o")
    with Gallery(home) as g:
        g.enroll(faces_dir)
    shutil.copy(other_home / "index.faiss", home / "index.faiss")
    with Gallery(home) as g:
        assert g.query(faces_dir / "person_0001" / "0002.jpg").identity == "person_0001"


def test_gallery_refuses_another_encoder(gallery: Gallery, faces_dir: Path, tmp_path: Path, home: Path) -> None:
    other = tmp_path / "other.pt"
    save_encoder(build_encoder(EncoderConfig(seed=123)), other)
    with pytest.raises(ModelError, match="not the one this gallery was enrolled with"):
        gallery.enroll(faces_dir, model=other)
    with pytest.raises(ModelError, match="not the one"):
        gallery.query(faces_dir / "person_0000" / "0000.jpg", model=other)
    own = next((home / "models").glob("*.pt"))
    assert gallery.query(faces_dir / "person_0000" / "0000.jpg", model=own).identity == "person_0000"


def test_enroll_with_a_model_file_binds_it(home: Path, faces_dir: Path, tmp_path: Path) -> None:
    model = tmp_path / "m.pt"
    fp = save_encoder(build_encoder(EncoderConfig(seed=11)), model)
    with Gallery(home) as g:
        g.enroll(faces_dir, model=model)
        assert g.info()["model"]["fingerprint"] == fp
    model.unlink()  # the home keeps its own copy
    with Gallery(home) as g:
        assert g.query(faces_dir / "person_0004" / "0000.jpg").identity == "person_0004"


def test_missing_gallery_model_file_is_a_clear_error(gallery: Gallery, faces_dir: Path, home: Path) -> None:
    gallery.close()
    for f in (home / "models").glob("*.pt"):
        f.unlink()
    with Gallery(home) as g, pytest.raises(ModelError, match="missing"):
        g.query(faces_dir / "person_0000" / "0000.jpg")


def test_empty_gallery(home: Path, faces_dir: Path) -> None:
    with Gallery(home) as g:
        with pytest.raises(GalleryError, match="empty"):
            g.query(faces_dir / "person_0000" / "0000.jpg")
        assert g.identities() == [] and g.info()["faces"] == 0


def test_bad_files_are_reported_and_lose_nothing(gallery: Gallery, tmp_path: Path) -> None:
    messy = tmp_path / "messy"
    write_dataset(messy, identities=2, images_per_identity=2, seed=5, first_identity=40)
    badfiles.truncated_jpeg(messy / "person_0040" / "broken.jpg")
    badfiles.not_an_image(messy / "person_0041" / "notes.jpg")
    badfiles.png_bomb(messy / "person_0041" / "bomb.png")
    badfiles.cmyk_jpeg(messy / "person_0042.jpg")  # DIR/<identity>.<ext> layout
    (messy / "empty_person").mkdir()
    (messy / "README.txt").write_text("not a face")
    report = gallery.enroll(messy)
    failed = {Path(f.path).name: f.error for f in report.failed}
    assert set(failed) == {"broken.jpg", "notes.jpg", "bomb.png", "empty_person"}
    assert "truncated" in failed["broken.jpg"] and "bomb" in failed["bomb.png"]
    assert report.enrolled == 5 and report.faces == 24 + 5
    assert {"person_0040", "person_0041", "person_0042"} <= {i["identity"] for i in gallery.identities()}


def test_duplicate_images_are_enrolled_once(home: Path, tmp_path: Path) -> None:
    src = tmp_path / "dups"
    write_dataset(src, identities=2, images_per_identity=1, seed=3)
    shutil.copy(src / "person_0000" / "0000.jpg", src / "person_0000" / "copy.jpg")
    shutil.copy(src / "person_0000" / "0000.jpg", src / "person_0001" / "stolen.jpg")
    (src / "person_0001" / "0000.jpg").rename(src / "person_0001" / "own.jpg")
    with Gallery(home) as g:
        report = g.enroll(src)
        # The same photo under two people is a label conflict: enrolled under neither.
        assert (report.enrolled, report.skipped, report.faces) == (1, 0, 1)
        [conflict] = report.to_dict()["conflicts"]
        assert conflict["identities"] == ["person_0000", "person_0001"] and conflict["enrolled_as"] is None
        assert sorted(Path(p).name for p in conflict["paths"]) == ["0000.jpg", "copy.jpg", "stolen.jpg"]
        # A photo enrolled before, labelled as someone else now: reported, the face stays.
        later = tmp_path / "later" / "person_0000"
        later.mkdir(parents=True)
        shutil.copy(src / "person_0001" / "own.jpg", later / "mine.jpg")
        shutil.copy(src / "person_0001" / "own.jpg", later / "mine-again.jpg")
        again = g.enroll(tmp_path / "later")
        assert (again.enrolled, again.faces) == (0, 1)
        assert again.conflicts[0].enrolled_as == "person_0001" and len(again.conflicts[0].paths) == 2
        # Same content twice under one person: enrolled once, the copy skipped.
        write_dataset(tmp_path / "twice", identities=1, images_per_identity=1, seed=9, first_identity=7)
        photo = next((tmp_path / "twice").rglob("0000.jpg"))
        shutil.copy(photo, photo.with_name("copy.jpg"))
        twice = g.enroll(tmp_path / "twice")
        assert (twice.enrolled, twice.skipped, twice.conflicts) == (1, 1, [])


def test_reserved_missing_and_empty_inputs(home: Path, tmp_path: Path) -> None:
    with Gallery(home) as g:
        with pytest.raises(InputError, match="no such folder"):
            g.enroll(tmp_path / "nowhere")
        (tmp_path / "empty").mkdir()
        with pytest.raises(InputError, match="no images found"):
            g.enroll(tmp_path / "empty")
        reserved = tmp_path / "reserved" / UNKNOWN
        reserved.mkdir(parents=True)
        badfiles.png_named_jpg(reserved / "a.jpg")
        with pytest.raises(InputError, match="reserved"):
            g.enroll(tmp_path / "reserved")


def test_any_sqlalchemy_url(tmp_path: Path, faces_dir: Path) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere' / 'faces.sqlite'}"
    with Gallery(tmp_path / "home", database_url=url) as g:
        g.enroll(faces_dir)
        assert g.info()["database"] == url
    assert (tmp_path / "elsewhere" / "faces.sqlite").exists()
    assert not (tmp_path / "home" / "gallery.db").exists()


def test_batch_search_equals_single_queries(gallery: Gallery, faces_dir: Path) -> None:
    encoder = gallery.encoder()
    import torch

    from facesearch.embedding.imaging import load_face

    paths = sorted(faces_dir.glob("*/*.jpg"))[:6]
    vectors = encoder.embed(torch.from_numpy(np.stack([load_face(p)[0] for p in paths]))).numpy()
    batch = gallery.search(vectors, top_k=2)
    single = [gallery.query(p, top_k=2) for p in paths]
    assert [r.identity for r in batch] == [r.identity for r in single]
    assert np.allclose([r.score for r in batch], [r.score for r in single], atol=1e-5)


def test_reembed_with_another_encoder(gallery: Gallery, faces_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.pt"
    fp = save_encoder(build_encoder(EncoderConfig(backbone="litface", head="avg", seed=8)), other)
    assert gallery.reembed(other) == 24
    assert gallery.info()["model"]["fingerprint"] == fp and gallery.info()["model"]["head"] == "avg"
    result = gallery.query(faces_dir / "person_0006" / "0001.jpg")
    assert result.identity == "person_0006" and result.score == pytest.approx(1.0, abs=1e-4)
    assert gallery.enroll(faces_dir, model=other).skipped == 24  # now the gallery's own


def test_reembed_changes_nothing_if_a_source_is_gone(home: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_dataset(src, identities=2, images_per_identity=2, seed=12)
    other = tmp_path / "other.pt"
    save_encoder(build_encoder(EncoderConfig(seed=99)), other)
    with Gallery(home) as g:
        g.enroll(src)
        before = g.info()["model"]["fingerprint"]
        (src / "person_0001" / "0000.jpg").unlink()
        with pytest.raises(GalleryError, match="nothing was changed.*no such file"):
            g.reembed(other)
        assert g.info()["model"]["fingerprint"] == before
        assert g.query(src / "person_0000" / "0001.jpg").score == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("kind", ["ivf", "hnsw", "ivf-sq8", "ivf-sq6", "ivf-pq"])
def test_approximate_index_answers_as_the_exact_one_on_a_small_gallery(
    gallery: Gallery, faces_dir: Path, home: Path, kind: str
) -> None:
    exact = answers(gallery, faces_dir)
    spec = gallery.set_index(kind)
    assert spec.kind == kind and read_index(home / "index.faiss").stamp.kind == kind  # built at once
    assert same_answers(answers(gallery, faces_dir), exact)  # few vectors: the approximate search is exhaustive
    gallery.close()
    with Gallery(home) as again:  # the kind lives in the database, the file is reused
        assert again.info()["index"]["kind"] == kind and same_answers(answers(again, faces_dir), exact)


def test_removal_from_an_hnsw_gallery_rebuilds_it_without_the_person(
    gallery: Gallery, faces_dir: Path, home: Path
) -> None:
    gallery.set_index("hnsw", ef_search=40)
    assert gallery.remove("person_0003") == 3
    on_disk = read_index(home / "index.faiss")
    assert on_disk.ntotal == 21 and on_disk.stamp.describes(gallery.store.state())
    result = gallery.query(faces_dir / "person_0003" / "0000.jpg", top_k=8)
    assert "person_0003" not in [m.identity for m in result.matches]
    assert gallery.index_info()["params"] == {"ef_search": 40}


def test_ivf_is_refitted_when_the_gallery_outgrows_it(home: Path, faces_dir: Path, tmp_path: Path) -> None:
    from facesearch.synthetic import write_dataset

    with Gallery(home) as g:
        g.set_index("ivf", nprobe=2)
        g.enroll(faces_dir)  # 24 faces: one cell
        first = read_index(home / "index.faiss").stamp
        assert (first.kind, first.trained_for) == ("ivf", 24)
        more = tmp_path / "more"
        write_dataset(more, identities=100, images_per_identity=3, seed=7)
        g.enroll(more)
        refitted = read_index(home / "index.faiss")
        assert refitted.cpu.nlist == ivf_cells(324) == 8 and refitted.ntotal == 324
        assert refitted.stamp.trained_for == 324 and training_size(IndexSpec("ivf"), 324) == 320
        assert g.index_info()["params"]["nprobe"] == 2
        assert g.query(faces_dir / "person_0005" / "0002.jpg").identity == "person_0005"


def test_enroll_without_a_model_uses_the_shipped_reference_encoder_on_onnx(
    home: Path, faces_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from facesearch.embedding.encoders import load_model
    from facesearch.models.encoder import read_model_file
    from facesearch.models.reference import REFERENCE_FILE, REFERENCE_ONNX
    from facesearch.embedding.onnx_runtime import read_sidecar

    monkeypatch.delenv("FACESEARCH_MODEL")
    shipped = read_model_file(REFERENCE_FILE)
    assert REFERENCE_FILE.stat().st_size <= 16 * 1024 * 1024 and REFERENCE_ONNX.stat().st_size <= 16 * 1024 * 1024
    assert shipped["meta"]["recipe"]["data"].endswith("fiw/train")  # trained by `facesearch train`
    sidecar = read_sidecar(REFERENCE_ONNX)
    assert sidecar["exported_from"] == shipped["fingerprint"] and "SFace" in sidecar["credits"]
    faces = np.random.default_rng(0).integers(0, 256, (4, 3, 112, 112), dtype=np.uint8)
    torch_form, onnx_form = load_model(REFERENCE_FILE, "cpu")[0], load_model(REFERENCE_ONNX)[0]
    assert np.sum(torch_form.embed_faces(faces) * onnx_form.embed_faces(faces), axis=1).min() > 0.9999
    with Gallery(home, detector="none") as g:  # synthetic crops: no real detector finds them
        g.enroll(faces_dir)
        model = g.info()["model"]
        assert model["runtime"] == "onnx" and model["fingerprint"] == load_model(REFERENCE_ONNX)[1]
        assert g.query(faces_dir / "person_0006" / "0002.jpg").identity == "person_0006"


def test_facesearch_model_sets_the_default_encoder(home: Path, faces_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import CROP_ENCODER

    monkeypatch.setenv("FACESEARCH_MODEL", str(home.parent / "nowhere.pt"))
    with Gallery(home) as g, pytest.raises(ModelError, match="nowhere.pt not found"):
        g.enroll(faces_dir)
    monkeypatch.setenv("FACESEARCH_MODEL", str(CROP_ENCODER))
    with Gallery(home) as g:
        g.enroll(faces_dir)
        assert g.info()["model"]["alignment"] == "crop"


def test_a_missing_reference_encoder_is_a_clear_error(
    home: Path, faces_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import facesearch.models.reference as reference

    monkeypatch.delenv("FACESEARCH_MODEL")

    monkeypatch.setattr(reference, "REFERENCE_ONNX", tmp_path / "gone.onnx")
    with Gallery(home) as g, pytest.raises(ModelError, match="reference encoder .* is missing"):
        g.enroll(faces_dir)
    with Gallery(home) as g:
        assert g.info()["faces"] == 0
