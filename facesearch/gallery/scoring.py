"""How a gallery scores people against a query face: the rule `query`, `bench` and `serve`
share, a gallery setting (`facesearch scoring RULE`).

* ``nearest`` (the default; the HW2P2 rule): a person scores their best-matching enrolled
  image. The index ranks images, so a person with many photos could fill the top k alone:
  neighbours are fetched until k distinct people are found or the gallery is exhausted.
* ``mean``: a person scores the cosine to the L2-normalised mean of their embeddings, a
  template that averages out one odd photo (and blurs a person enrolled in very different
  poses). The candidates are the people of the nearest images (at least ``CANDIDATES`` of
  them), re-scored on templates made from the database's vectors at query time, so a template
  is never stale and works on every index kind. A person whose template would win but none of
  whose images is near enough to be a candidate is missed; on cfp-dev this rule gave the
  figures of the exhaustive comparison (benchmarks/gallery_scoring.py; README).
"""

from __future__ import annotations

import numpy as np

from facesearch.gallery.answers import Match
from facesearch.gallery.rules import DEFAULT, check_rule
from facesearch.gallery.store import Store
from facesearch.index.base import SearchIndex, found_ids

CANDIDATES = 16
"""People re-scored on their templates under ``mean``, at least (more when top k asks)."""


def rank(index: SearchIndex, store: Store, vectors: np.ndarray, top_k: int, rule: str = DEFAULT) -> list[list[Match]]:
    """The top ``top_k`` people for each query vector (rows of ``vectors``), best first."""
    if check_rule(rule) == "nearest":
        return nearest_people(index, store, vectors, top_k)
    candidates = nearest_people(index, store, vectors, max(top_k, CANDIDATES))
    return by_template(store, vectors, candidates, top_k)


def nearest_people(index: SearchIndex, store: Store, vectors: np.ndarray, top_k: int) -> list[list[Match]]:
    """Each person scored by their best image among the index's neighbours."""
    ranked: list[list[Match] | None] = [None] * len(vectors)
    pending = list(range(len(vectors)))
    k = min(index.ntotal, max(16, 4 * top_k))
    while pending:
        scores, ids = index.search(vectors[pending], k)
        records = store.faces(found_ids(ids).tolist())
        still = []
        for row, query in enumerate(pending):
            matches: dict[str, Match] = {}
            for score, face_id in zip(scores[row], ids[row]):
                record = records.get(int(face_id))
                if record is not None and record.identity not in matches:
                    matches[record.identity] = Match(record.identity, float(score), record.source_path)
            reached_all = k >= index.ntotal or ids[row, -1] < 0  # approximate: nothing further
            if len(matches) >= top_k or reached_all:
                ranked[query] = list(matches.values())[:top_k]
            else:
                still.append(query)
        pending, k = still, min(index.ntotal, k * 4)
    return [r or [] for r in ranked]


def by_template(store: Store, vectors: np.ndarray, candidates: list[list[Match]], top_k: int) -> list[list[Match]]:
    """The candidates re-scored by their templates (each keeps its nearest image as ``image``)."""
    people = sorted({m.identity for matches in candidates for m in matches})
    templates = {name: template(stored) for name, stored in store.identity_embeddings(people, vectors.shape[1]).items()}
    out = []
    for vector, matches in zip(vectors.astype(np.float64), candidates):
        rescored = [Match(m.identity, float(templates[m.identity] @ vector), m.image)
                    for m in matches if m.identity in templates]  # removed since: gone
        out.append(sorted(rescored, key=lambda m: -m.score)[:top_k])
    return out


def template(stored: np.ndarray) -> np.ndarray:
    """A person's template: the L2-normalised mean of their unit embeddings."""
    centre = stored.astype(np.float64).sum(axis=0)
    return centre / max(float(np.linalg.norm(centre)), 1e-12)
