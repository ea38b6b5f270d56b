"""The one interface every search backend implements, and what the gallery hands it.

A gallery's index is derived data: the database holds every face and its vector, and an
index is built, repaired and rebuilt from it (``facesearch.gallery.indexing``). Two roles:

* ``SearchIndex``: inner-product search over (face id, unit vector) pairs, in memory or
  behind a server: FAISS (``faiss_index.FaceIndex``) or Milvus (``milvus.MilvusIndex``).
* ``IndexStore``: where an index of one kind is kept between processes, and how a new one
  is made: a FAISS file (``faiss_file.FaissFile``) or a Milvus collection
  (``milvus.MilvusCollection``).

A new backend implements both and is chosen by its kind in ``gallery.indexing``; nothing
else in the gallery knows which backend answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from facesearch.index.spec import DatabaseState, IndexSpec, IndexStamp

StoredVectors = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""ids -> (the ids still stored, in ascending order, and their float vectors): the database.
Compressed kinds re-rank their candidates on these exact vectors; it is given to an index
when it is made or loaded."""


def found_ids(ids: np.ndarray) -> np.ndarray:
    """The distinct face ids of a search's result, ascending, without the -1 padding.
    (Not ``np.unique``: numpy 2 imports ``numpy.ma`` on its first call, 20-30 ms of a cold
    query.)"""
    found = np.sort(ids[ids >= 0], axis=None)
    return found[np.concatenate(([True], found[1:] != found[:-1]))] if len(found) else found


@runtime_checkable
class SearchIndex(Protocol):
    """Inner-product search keyed by face ids."""

    dim: int
    spec: IndexSpec
    stamp: IndexStamp

    @property
    def ntotal(self) -> int:
        """How many vectors it holds."""

    def ids(self) -> np.ndarray:
        """Every face id it holds, ascending (what reconciling with the database compares)."""

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add unit vectors under their face ids."""

    def remove(self, ids: np.ndarray) -> int:
        """Delete these face ids (``spec.removes`` False: cannot, the caller rebuilds)."""

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of each query's k nearest, best first; exact cosines clipped to
        [-1, 1]; ids -1 past the end."""

    def tune(self, spec: IndexSpec) -> None:
        """Apply another search effort of the same kind without rebuilding."""

    def outgrown(self, size: int) -> bool:
        """Should it be rebuilt for a gallery of ``size`` faces (an IVF fitted to far fewer)?"""


@runtime_checkable
class IndexStore(Protocol):
    """Where an index of one kind lives between processes."""

    @property
    def where(self) -> str:
        """A file path or a URI#collection, for messages and ``info``."""

    def load(self, state: DatabaseState) -> SearchIndex | None:
        """The kept index, or None when there is none that checks out (then: rebuild)."""

    def create(self, stamp: IndexStamp, spec: IndexSpec, sample: np.ndarray | None, size: int) -> SearchIndex:
        """A new, empty index (IVF kinds: fitted on ``sample`` for a gallery of ``size``)."""

    def save(self, index: SearchIndex) -> None:
        """Keep ``index`` and the database state it reflects."""

    def stamp(self) -> IndexStamp | None:
        """The kept index's stamp, read cheaply (None: none, or unreadable)."""

    def drop(self) -> None:
        """Delete the kept index."""

    def close(self) -> None:
        """Let go of connections and files."""
