"""Grouping faces into people, from their unit embeddings, without labels.

Every method here works on the k-nearest-neighbour graph of the faces (cosine similarity),
never on all pairs, so 100,000 faces take minutes on a CPU; the neighbours come from a
``Neighbours`` callable (exact FAISS by default; a gallery passes its own index). Methods
(``METHODS``), each deterministic (the same faces in the same order give the same groups):

* ``linkage``: average-linkage agglomeration restricted to the kNN graph, stopped at the
  threshold: two groups merge while the mean similarity between them is at least
  ``threshold``. Average linkage does not chain one person into the next through a single
  pair of look-alike photos, which a threshold on single edges does (the split-or-merge
  failure photo libraries report).
* ``density``: DBSCAN's rule on the kNN graph (as immich and PhotoPrism group faces): faces
  with at least ``min_faces`` neighbours within ``threshold`` are cores, and a group is the
  cores reachable from each other and the faces they reach.

A face that joins no group of at least ``min_faces`` is left ungrouped (label -1). The
baseline to beat is scikit-learn's DBSCAN with immich's settings over all pairs
(``dbscan_baseline``); benchmarks/clustering.py measures them side by side.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.sparse import csr_matrix

Neighbours = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]
"""(vectors, k) -> (similarities, indices) of each vector's k nearest among ``vectors``
(itself included), best first; -1 indices past the end."""

METHODS = ("linkage", "density")
DEFAULT_K = 16


def exact_neighbours(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product neighbours (FAISS flat, batched)."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return index.search(vectors, min(k, len(vectors)))


def knn_graph(vectors: np.ndarray, k: int, neighbours: Neighbours = exact_neighbours) -> csr_matrix:
    """The symmetric kNN graph, weighted by cosine similarity (no self-loops)."""
    scores, ids = neighbours(vectors, k + 1)
    rows = np.repeat(np.arange(len(vectors)), ids.shape[1])
    cols, weights = ids.ravel(), scores.ravel()
    keep = (cols >= 0) & (cols != rows)
    graph = csr_matrix((weights[keep], (rows[keep], cols[keep])), shape=(len(vectors), len(vectors)))
    return graph.maximum(graph.T).tocsr()


def group(
    vectors: np.ndarray, method: str = "linkage", threshold: float = 0.5, min_faces: int = 2,
    k: int = DEFAULT_K, neighbours: Neighbours = exact_neighbours,
) -> np.ndarray:
    """A group number for every face (0, 1, ... in order of each group's first face; -1:
    ungrouped)."""
    if method not in METHODS:
        raise ValueError(f"unknown grouping method {method!r} (known: {', '.join(METHODS)})")
    if len(vectors) == 0:
        return np.zeros(0, np.int64)
    graph = knn_graph(vectors, k, neighbours)
    labels = _linkage(graph, threshold) if method == "linkage" else _density(graph, threshold, min_faces)
    return _numbered(labels, min_faces)


def extend(
    vectors: np.ndarray, groups: np.ndarray, threshold: float = 0.5, min_faces: int = 2,
    k: int = DEFAULT_K, neighbours: Neighbours = exact_neighbours,
) -> np.ndarray:
    """Incremental grouping (average linkage): ``groups`` holds the group of each of the
    first ``len(groups)`` faces (-1: ungrouped), and the faces after them are new. Existing
    groups keep their numbers and are never split, nor merged with each other (a user may
    have looked at them); new faces, and faces left ungrouped before, join them or each other
    by the same rule as ``group``. New groups are numbered after the highest existing one,
    in order of their first face."""
    groups = np.asarray(groups, np.int64)
    if len(vectors) == 0:
        return np.zeros(0, np.int64)
    graph = knn_graph(vectors, k, neighbours)
    roots = _linkage(graph, threshold, groups)
    out = np.full(len(vectors), -1, np.int64)
    out[: len(groups)] = groups
    kept = {int(roots[i]): int(g) for i, g in enumerate(groups) if g >= 0}
    members: dict[int, list[int]] = {}
    for i, root in enumerate(roots):
        members.setdefault(int(root), []).append(i)
    following = int(groups.max(initial=-1)) + 1
    for root, faces in sorted(members.items(), key=lambda item: item[1][0]):
        if root in kept:
            out[faces] = kept[root]
        elif len(faces) >= min_faces:
            out[faces] = following
            following += 1
    return out


def _linkage(graph: csr_matrix, threshold: float, fixed: np.ndarray | None = None) -> np.ndarray:
    """Average linkage over graph edges: repeatedly merge the two connected groups of the
    highest mean similarity (summed over their edges, divided by the product of their sizes:
    pairs with no kNN edge count as 0 similarity, which keeps far-apart groups apart) while
    it is at least ``threshold``. A lazy max-heap over group pairs; ties by group number.
    ``fixed``: groups of the first faces that start merged and never merge with each other.
    Returns each face's group root."""
    import heapq

    n = graph.shape[0]
    parent = np.arange(n)
    size = np.ones(n, np.int64)
    pinned = np.zeros(n, bool)  # a root that holds a fixed group
    links: list[dict[int, float]] = [dict() for _ in range(n)]  # group -> {neighbour group: summed similarity}
    coo = graph.tocoo()
    for i, j, w in zip(coo.row, coo.col, coo.data):
        if i < j:
            links[i][j] = links[i].get(j, 0.0) + float(w)
            links[j][i] = links[j].get(i, 0.0) + float(w)
    alive = np.ones(n, bool)

    def merge(keep: int, gone: int) -> None:
        links[keep].pop(gone, None)
        links[gone].pop(keep, None)
        for other, total in links[gone].items():
            links[other].pop(gone)
            links[keep][other] = links[keep].get(other, 0.0) + total
            links[other][keep] = links[keep][other]
        links[gone] = {}
        alive[gone] = False
        parent[gone] = keep
        size[keep] += size[gone]
        pinned[keep] |= pinned[gone]

    if fixed is not None:
        first: dict[int, int] = {}
        for i, label in enumerate(np.asarray(fixed).tolist()):
            if label >= 0:
                if label in first:
                    merge(first[label], i)
                else:
                    first[label] = i
                    pinned[i] = True
    heap = [(-total / (size[i] * size[j]), i, j) for i in range(n) if alive[i] for j, total in links[i].items() if i < j]
    heapq.heapify(heap)
    while heap:
        negative, a, b = heapq.heappop(heap)
        if not (alive[a] and alive[b]) or b not in links[a]:
            continue
        mean = links[a][b] / (size[a] * size[b])
        if abs(mean + negative) > 1e-12:  # stale entry: the pair changed since it was pushed
            continue
        if mean < threshold:
            break
        if pinned[a] and pinned[b]:  # two existing groups stay two
            continue
        keep, gone = (a, b) if (pinned[a], len(links[a])) >= (pinned[b], len(links[b])) else (b, a)
        merge(keep, gone)
        for other, total in links[keep].items():
            heapq.heappush(heap, (-total / (size[keep] * size[other]), min(keep, other), max(keep, other)))
    return np.array([_root(parent, i) for i in range(n)])


def _root(parent: np.ndarray, i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return int(i)


def _density(graph: csr_matrix, threshold: float, min_faces: int) -> np.ndarray:
    """DBSCAN on the kNN graph: edges at or above ``threshold``; a core has at least
    ``min_faces`` faces (itself included) within it."""
    from scipy.sparse.csgraph import connected_components

    close = graph.copy()
    close.data = np.where(close.data >= threshold, 1.0, 0.0)
    close.eliminate_zeros()
    core = np.asarray(close.sum(axis=1)).ravel() + 1 >= min_faces
    core_graph = close[core][:, core]
    _, core_labels = connected_components(core_graph, directed=False)
    labels = np.full(graph.shape[0], -1, np.int64)
    labels[np.flatnonzero(core)] = core_labels
    for i in np.flatnonzero(~core):  # a border face joins its most similar core's group
        row = graph.getrow(i)
        candidates = [(w, j) for j, w in zip(row.indices, row.data) if core[j] and w >= threshold]
        if candidates:
            labels[i] = labels[max(candidates)[1]]
    return labels


def _numbered(labels: np.ndarray, min_faces: int) -> np.ndarray:
    """Groups of at least ``min_faces`` numbered 0, 1, ... by their first face; others -1."""
    out = np.full(len(labels), -1, np.int64)
    sizes: dict[int, int] = {}
    for label in labels:
        if label >= 0:
            sizes[int(label)] = sizes.get(int(label), 0) + 1
    numbers: dict[int, int] = {}
    for i, label in enumerate(labels):
        if label >= 0 and sizes[int(label)] >= min_faces:
            out[i] = numbers.setdefault(int(label), len(numbers))
    return out


def dbscan_baseline(vectors: np.ndarray, eps: float = 0.5, min_samples: int = 3) -> np.ndarray:
    """scikit-learn's DBSCAN over all pairs with immich's settings (cosine distance 0.5,
    3 faces): the baseline, not used by the gallery."""
    from sklearn.cluster import DBSCAN

    labels = DBSCAN(eps=eps, min_samples=min_samples, metric="cosine").fit_predict(vectors)
    return _numbered(labels, 1)
