"""The index: exact and approximate search, removal, atomic save, and refusal of damaged files."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from facesearch.errors import InputError
from facesearch.index.faiss_file import IndexFileError, read_index, read_stamp, write_index
from facesearch.index.faiss_index import FaceIndex
from facesearch.index.spec import IVF_KINDS, IndexSpec, IndexStamp, ivf_cells, training_size
from facesearch.gallery.store import GalleryState


def unit(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def make_index(n: int = 50) -> tuple[FaceIndex, np.ndarray]:
    index = FaceIndex(8, IndexStamp("u", 3, "fp", 8), use_gpu=False)
    vectors = unit(n)
    index.add(np.arange(100, 100 + n), vectors)
    return index, vectors


def test_exact_inner_product_search_matches_numpy() -> None:
    index, vectors = make_index()
    queries = unit(5, seed=1)
    scores, ids = index.search(queries, 3)
    expected = np.argsort(-(queries @ vectors.T), axis=1)[:, :3] + 100
    assert np.array_equal(ids, expected)
    assert np.allclose(scores[:, 0], (queries @ vectors.T).max(axis=1), atol=1e-6)


def test_remove_drops_vectors() -> None:
    index, vectors = make_index()
    assert index.remove(np.array([100, 101, 999])) == 2
    assert index.ntotal == 48 and 100 not in index.ids()
    _, ids = index.search(vectors[:1], 1)
    assert ids[0, 0] != 100


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    index, vectors = make_index()
    write_index(index, tmp_path / "i.faiss")
    loaded = read_index(tmp_path / "i.faiss", use_gpu=False)
    assert loaded.stamp == index.stamp and read_stamp(tmp_path / "i.faiss") == index.stamp
    assert np.array_equal(loaded.ids(), index.ids())
    assert np.array_equal(loaded.search(vectors, 2)[1], index.search(vectors, 2)[1])
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_damaged_index_files_are_refused(tmp_path: Path, damage: str) -> None:
    index, _ = make_index()
    path = tmp_path / "i.faiss"
    write_index(index, path)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 100]
    elif damage == "flip":
        data[-10] ^= 0xFF
    elif damage == "garbage":
        data = bytearray(b"x" * 300)
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    with pytest.raises(IndexFileError):
        read_index(path)


def test_an_index_of_other_codes_than_its_stamp_says_is_refused(tmp_path: Path) -> None:
    vectors, _ = clustered(people=100, per_person=4)
    index = build("ivf-sq8", vectors)
    index.stamp = dataclasses.replace(index.stamp, kind="ivf-sq6")  # 8-bit codes called 6-bit
    write_index(index, tmp_path / "i.faiss")
    with pytest.raises(IndexFileError, match="unexpected index type"):
        read_index(tmp_path / "i.faiss")


def test_stamp_describes_only_its_own_database_state() -> None:
    stamp = IndexStamp("u", 3, "fp", 8)
    assert stamp.describes(GalleryState("u", 3, "fp", 8))
    assert not stamp.describes(GalleryState("u", 4, "fp", 8))
    assert not stamp.describes(GalleryState("other", 3, "fp", 8))
    assert stamp.same_gallery(GalleryState("u", 9, "fp", 8))
    assert not stamp.same_gallery(GalleryState("u", 3, "fp2", 8))


def clustered(people: int, per_person: int, dim: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Photos around each person's centre, plus one unseen photo per person as queries."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(people, dim))

    def photos(n: int) -> np.ndarray:
        v = centres[np.arange(n) % people] + 0.3 * rng.normal(size=(n, dim))
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    return photos(people * per_person), photos(people)


def build(kind: str, vectors: np.ndarray, **params: int) -> FaceIndex:
    spec = IndexSpec.parse(kind, params)
    sample = vectors[: training_size(spec, len(vectors))] if spec.kind in IVF_KINDS else None
    stamp = IndexStamp("u", 3, "fp", vectors.shape[1])
    index = FaceIndex(vectors.shape[1], stamp, False, spec, sample, len(vectors))
    index.add(np.arange(1000, 1000 + len(vectors)), vectors)
    return index


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_kinds_find_the_exact_neighbour_and_its_exact_score(kind: str) -> None:
    vectors, queries = clustered(people=500, per_person=4)
    exact_scores, exact_ids = build("flat", vectors).search(queries, 1)
    index = build(kind, vectors)
    assert index.stamp.kind == kind and index.ntotal == len(vectors)
    scores, ids = index.search(queries, 1)
    found = ids[:, 0] == exact_ids[:, 0]
    assert found.mean() >= 0.95  # recall@1 at the default search effort
    assert np.allclose(scores[found, 0], exact_scores[found, 0], atol=1e-6)  # threshold semantics kept
    assert np.array_equal(np.sort(index.ids()), np.arange(1000, 1000 + len(vectors)))


def test_ivf_fits_its_cells_to_the_gallery_and_searches_nprobe_of_them() -> None:
    vectors, queries = clustered(people=500, per_person=4)
    index = build("ivf", vectors, nprobe=1)
    assert index.cpu.nlist == ivf_cells(len(vectors)) == 51  # 2000 // 39 caps 4 sqrt(2000)
    assert index.stamp.trained_for == 2000 and training_size(index.spec, 2000) == 2000
    exhaustive = build("ivf", vectors, nprobe=ivf_cells(len(vectors)))  # every cell: exact
    assert np.array_equal(exhaustive.search(queries, 3)[1], build("flat", vectors).search(queries, 3)[1])
    assert index.outgrown(4 * 2000 + 1) and not index.outgrown(4 * 2000)
    big, _ = clustered(people=25_000, per_person=4, dim=8)  # the sample is a part of the gallery
    spec = IndexSpec("ivf")
    large = FaceIndex(8, IndexStamp("u", 3, "fp", 8), False, spec, big[: training_size(spec, len(big))], len(big))
    assert large.cpu.nlist == ivf_cells(100_000) == 1264 and training_size(spec, len(big)) == 50_560
    assert large.stamp.trained_for == 100_000 and not large.outgrown(100_000)


def test_ivf_removes_in_place_and_hnsw_refuses() -> None:
    vectors, _ = clustered(people=50, per_person=4)
    ivf = build("ivf", vectors)
    assert ivf.remove(np.array([1000, 1001, 5])) == 2
    assert 1000 not in ivf.ids() and ivf.ntotal == len(vectors) - 2
    assert ivf.search(vectors[:1], 1)[1][0, 0] != 1000
    with pytest.raises(NotImplementedError):
        build("hnsw", vectors).remove(np.array([1000]))


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_kinds_survive_save_and_load(tmp_path: Path, kind: str) -> None:
    vectors, queries = clustered(people=100, per_person=4)
    index = build(kind, vectors)
    write_index(index, tmp_path / "i.faiss")
    loaded = read_index(tmp_path / "i.faiss", use_gpu=False)
    loaded.tune(index.spec)
    assert loaded.stamp == index.stamp and loaded.spec == index.spec
    assert np.array_equal(np.sort(loaded.ids()), np.sort(index.ids()))
    assert np.array_equal(loaded.search(queries, 2)[1], index.search(queries, 2)[1])


def test_index_spec_refuses_bad_kinds_and_parameters() -> None:
    assert IndexSpec.parse("ivf", {"nprobe": 8}).params() == {"nprobe": 8}
    assert IndexSpec.parse("flat").params() == {}
    assert IndexSpec.parse("ivf-pq", {"rerank": 256}).params() == {"nprobe": 64, "rerank": 256}
    assert IndexSpec.parse("ivf-sq6", {"nprobe": 8}).rerank == 64  # galleries stored before the setting
    for kind, params, message in [
        ("annoy", {}, "unknown index kind"),
        ("ivf", {"nprobe": 0}, "positive integer"),
        ("ivf", {"nprobe": 2.5}, "positive integer"),
        ("hnsw", {"M": 8}, "unknown index parameter"),
        ("flat", {"nprobe": 8}, "--nprobe is for the ivf"),
        ("ivf", {"rerank": 128}, "--rerank is for the ivf-sq8"),
        ("ivf-pq", {"ef_search": 64}, "--ef-search is for the hnsw"),
        ("ivf-sq8", {"rerank": 0}, "positive integer"),
    ]:
        with pytest.raises(InputError, match=message):
            IndexSpec.parse(kind, params)


def in_memory(ids: np.ndarray, vectors: np.ndarray) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """A StoredVectors over arrays (the database's role in a gallery)."""
    order = np.argsort(ids)
    ids, vectors = ids[order], vectors[order]

    def lookup(wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        at = np.searchsorted(ids, wanted)
        ok = (at < len(ids)) & (ids[np.minimum(at, len(ids) - 1)] == wanted)
        return ids[at[ok]], vectors[at[ok]]

    return lookup


@pytest.mark.parametrize("kind", ["ivf-sq8", "ivf-sq6", "ivf-pq"])
def test_compressed_kinds_re_rank_to_exact_scores_in_a_fraction_of_the_memory(kind: str, tmp_path: Path) -> None:
    vectors, queries = clustered(people=3000, per_person=4)  # 12,000 faces: 8-bit PQ codes are fitted
    ids = np.arange(1000, 1000 + len(vectors))
    flat = build("flat", vectors)
    exact_scores, exact_ids = flat.search(queries, 5)
    index = build(kind, vectors)
    with pytest.raises(RuntimeError, match="stored vectors"):
        index.search(queries, 1)  # never an approximate score passed off as a cosine
    index.stored = in_memory(ids, vectors)
    scores, found = index.search(queries, 5)
    assert (found[:, 0] == exact_ids[:, 0]).mean() >= 0.97
    same = found == exact_ids
    assert np.allclose(scores[same], exact_scores[same], atol=1e-6)  # re-ranked: the exact cosine
    assert np.all(np.diff(scores, axis=1) <= 0)
    dim = vectors.shape[1]
    assert index.cpu.code_size == {"ivf-sq8": dim, "ivf-sq6": dim * 6 // 8, "ivf-pq": dim // 8}[kind]  # against 4 dim flat
    write_index(index, tmp_path / "c.faiss")
    write_index(flat, tmp_path / "f.faiss")
    assert (tmp_path / "c.faiss").stat().st_size < 0.4 * (tmp_path / "f.faiss").stat().st_size  # cells included
    loaded = read_index(tmp_path / "c.faiss", use_gpu=False)
    loaded.stored, loaded.spec = index.stored, index.spec
    loaded.tune(index.spec)
    assert loaded.stamp.kind == kind and np.array_equal(loaded.search(queries, 3)[1], index.search(queries, 3)[1])
    assert index.remove(ids[:2]) == 2 and ids[0] not in index.ids()


def test_re_rank_drops_candidates_the_database_no_longer_has() -> None:
    from facesearch.index.rerank import rerank

    vectors = np.eye(4, dtype=np.float32)
    stored = in_memory(np.array([10, 11, 13]), vectors[[0, 1, 3]])  # 12 was removed
    scores, ids = rerank(vectors[[2, 0]], np.array([[12, 13, -1], [11, 10, 12]]), 3, stored)
    assert ids.tolist() == [[13, -1, -1], [10, 11, -1]]
    assert scores[1, 0] == pytest.approx(1.0) and scores[0, 1] == -1.0


def test_more_candidates_re_ranked_recover_what_the_codes_rank_wrong() -> None:
    """The ``rerank`` setting is the recall lever of PQ codes (their own ranking is coarse):
    re-ranking every vector of the cells searched is exact search, and more never loses."""
    vectors, queries = clustered(people=400, per_person=30)  # many photos a person: close calls
    exact_ids = build("flat", vectors).search(queries, 1)[1][:, 0]
    index = build("ivf-pq", vectors, nprobe=ivf_cells(len(vectors)))  # every cell: only the codes err
    index.stored = in_memory(np.arange(1000, 1000 + len(vectors)), vectors)
    codes_alone = float(np.mean(index.cpu.search(queries, 1)[1][:, 0] == exact_ids))
    recall = {}
    for rerank in (8, 64, len(vectors)):
        index.tune(IndexSpec("ivf-pq", nprobe=ivf_cells(len(vectors)), rerank=rerank))
        recall[rerank] = float(np.mean(index.search(queries, 1)[1][:, 0] == exact_ids))
    assert codes_alone < recall[8] < recall[64] <= recall[len(vectors)] == 1.0
