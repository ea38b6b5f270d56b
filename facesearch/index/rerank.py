"""Exact re-ranking: the compressed kinds' candidates scored on the database's float vectors,
so every score a gallery returns is the exact cosine whatever the index (and the threshold
means the same thing on every kind)."""

from __future__ import annotations

import numpy as np

from facesearch.index.base import StoredVectors, found_ids


def rerank(queries: np.ndarray, candidates: np.ndarray, k: int, stored: StoredVectors) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of each query's candidate ids by their exact cosine on the stored float
    vectors (ids -1 and candidates no longer stored are dropped; -1 pads a short row)."""
    found, vectors = stored(found_ids(candidates))
    scores = np.full((len(queries), k), -1.0, dtype=np.float32)
    ids = np.full((len(queries), k), -1, dtype=np.int64)
    for row, query in enumerate(queries):
        at = np.searchsorted(found, candidates[row])
        kept = (candidates[row] >= 0) & (at < len(found))
        kept[kept] = found[at[kept]] == candidates[row][kept]
        exact = vectors[at[kept]] @ query
        order = np.argsort(-exact, kind="stable")[:k]
        scores[row, : len(order)] = exact[order]
        ids[row, : len(order)] = candidates[row][kept][order]
    return scores, ids
