"""The index file: exact search, removal, atomic save, and refusal of damaged files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facesearch.index import FaceIndex, IndexFileError, IndexStamp, read_stamp
from facesearch.store import GalleryState


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
    index.save(tmp_path / "i.faiss")
    loaded = FaceIndex.load(tmp_path / "i.faiss", use_gpu=False)
    assert loaded.stamp == index.stamp and read_stamp(tmp_path / "i.faiss") == index.stamp
    assert np.array_equal(loaded.ids(), index.ids())
    assert np.array_equal(loaded.search(vectors, 2)[1], index.search(vectors, 2)[1])
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_damaged_index_files_are_refused(tmp_path: Path, damage: str) -> None:
    index, _ = make_index()
    path = tmp_path / "i.faiss"
    index.save(path)
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
        FaceIndex.load(path)


def test_stamp_describes_only_its_own_database_state() -> None:
    stamp = IndexStamp("u", 3, "fp", 8)
    assert stamp.describes(GalleryState("u", 3, "fp", 8))
    assert not stamp.describes(GalleryState("u", 4, "fp", 8))
    assert not stamp.describes(GalleryState("other", 3, "fp", 8))
    assert stamp.same_gallery(GalleryState("u", 9, "fp", 8))
    assert not stamp.same_gallery(GalleryState("u", 3, "fp2", 8))
