"""A gallery's search index: derived from its database, kept in memory and by its backend
(HOME/index.faiss for the FAISS kinds, a Milvus collection for ``milvus``).

The database is the source of truth; the index is stamped with the database state it
describes (gallery uuid, revision, encoder) and repaired from the database whenever the stamp
disagrees: after a crash, a concurrent enroll, a removal or a change of kind. Writes happen
under the gallery's file lock; the in-memory index is guarded by ``memory`` against the
threads of one process (serve's requests), taken after the file lock where both are held.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from typing import Any

import numpy as np

from facesearch.errors import GalleryError
from facesearch.gallery.home import Home
from facesearch.index.base import IndexStore, SearchIndex
from facesearch.index.spec import IVF_KINDS, IndexSpec, IndexStamp, ivf_cells, training_size
from facesearch.gallery.locking import GalleryLock
from facesearch.gallery.store import GalleryState, Store

log = logging.getLogger(__name__)


class GalleryIndex:
    """The index of the gallery in ``home`` whose rows are in ``store``."""

    def __init__(self, home: Home, store: Store, lock: GalleryLock, gpu: bool | None = None) -> None:
        self.home, self.store, self.lock, self.gpu = home, store, lock, gpu
        self.memory = threading.RLock()
        self._index: SearchIndex | None = None
        self._dirty = False
        self._backends: dict[tuple, IndexStore] = {}

    @property
    def spec(self) -> IndexSpec:
        return IndexSpec.parse(*self.store.index_spec())

    def synced(self) -> SearchIndex:
        """The in-memory index, made to agree with the database if it does not."""
        with self.memory:
            return self._sync()

    def _sync(self, spec: IndexSpec | None = None) -> SearchIndex:
        with self.store.one_read(fresh=True):  # state and spec in one read, under ``memory``
            state, spec = self.store.state(), spec or self.spec
        if state.dim is None:
            raise GalleryError(f"the gallery in {self.home.root} is empty: run `facesearch enroll` first")
        index = self._index
        if index is not None and (index.spec.kind, index.spec.place) != (spec.kind, spec.place):
            index = None  # another kind, or another Milvus collection: that one's own index
        stored = index is None
        if stored:
            index = self.backend(spec).load(state)
        if index is None or not index.stamp.same_gallery(state) or index.dim != state.dim or index.spec.kind != spec.kind:
            index = self._new(state, spec)
        elif index.spec != spec:
            index.tune(spec)
        if not index.stamp.describes(state):
            if stored and index.stamp.revision >= 0:
                log.warning("index %s does not match the database; repairing it", self.backend(spec).where)
            index = self._reconcile(index)
        self._index = index
        return index

    def _stored_vectors(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The database's float vectors of these faces: the compressed kinds re-rank on them."""
        return self.store.embeddings(ids)

    def backend(self, spec: IndexSpec | None = None) -> IndexStore:
        """Where an index of ``spec`` (default: the gallery's) is kept: a FAISS file, or a
        Milvus collection. Each backend is imported only when its kind is used."""
        spec = spec or self.spec
        if spec.kind != "milvus":
            from facesearch.index.faiss_file import FaissFile

            return FaissFile(self.home.index, self.gpu, self._stored_vectors)
        uuid = self.store.state().uuid
        key = (spec.place, uuid)
        if key not in self._backends:  # one client per place: connecting costs 0.1 s or more
            from facesearch.index.milvus import MilvusCollection  # pymilvus: the milvus extra

            self._backends[key] = MilvusCollection(spec, self.home.root, uuid, self.lock.timeout)
        return self._backends[key]

    def close(self) -> None:
        """Let go of the backends' connections (a Milvus Lite file is one process's at a time)."""
        with self.memory:
            for backend in self._backends.values():
                backend.close()
            self._backends.clear()
            self._index = None

    def _new(self, state: GalleryState, spec: IndexSpec) -> SearchIndex:
        """An empty index of the gallery's kind (an IVF one fitted to a sample of its faces)."""
        sample, size = None, 0
        if spec.kind in IVF_KINDS:
            _, db_ids = self.store.snapshot_ids()
            size, wanted = len(db_ids), training_size(spec, len(db_ids))
            chosen = np.sort(np.random.default_rng(0).choice(db_ids, wanted, replace=False))
            sample = self.store.embeddings(chosen, state.dim)[1]
            log.info("fitting %d IVF cells on %d of %d faces", ivf_cells(size), wanted, size)
        stamp = replace(IndexStamp.of(state, state.dim), revision=-1)
        return self.backend(spec).create(stamp, spec, sample, size)

    def _reconcile(self, index: SearchIndex) -> SearchIndex:
        """Add and remove vectors until the index holds exactly the database's faces."""
        state, db_ids = self.store.snapshot_ids()
        have = index.ids()
        extra = np.setdiff1d(have, db_ids, assume_unique=True)
        if (len(extra) and not index.spec.removes) or index.outgrown(len(db_ids)):
            log.info("rebuilding the %s index for %d faces", index.spec.kind, len(db_ids))
            return self._reconcile(self._new(state, index.spec))
        missing = np.setdiff1d(db_ids, have, assume_unique=True)
        index.remove(extra)
        for start in range(0, len(missing), 50_000):
            ids, vectors = self.store.embeddings(missing[start : start + 50_000], index.dim)
            index.add(ids, vectors)
        if len(have) or len(db_ids):
            log.info(
                "index brought up to date with the database (revision %s -> %s): "
                "%d vectors added, %d removed", index.stamp.revision, state.revision,
                len(missing), len(extra),
            )
        index.stamp = replace(index.stamp, uuid=state.uuid, revision=state.revision, fingerprint=state.fingerprint)
        self._dirty = True
        return index

    def added(self, index: SearchIndex, ids: list[int], vectors: np.ndarray, revision: int) -> None:
        """Faces just committed to the database (at ``revision``), into ``index`` (from
        ``synced``, under the file lock); an IVF index outgrown by them is refitted."""
        with self.memory:
            if index.outgrown(index.ntotal + len(ids)):
                self._index = self._reconcile(self._new(self.store.state(), index.spec))
            else:
                index.add(np.asarray(ids, dtype=np.int64), vectors)
                self._advance(index, revision)
            self._dirty = True

    @staticmethod
    def _advance(index: SearchIndex, revision: int) -> None:
        """Stamp ``index`` with the revision of the change just applied to it, if it held
        every change before that one. Homes sharing one database (PostgreSQL) do not share a
        lock: another home's commit may have slipped in between, and then the index stays
        stamped older, to be reconciled by ids on its next use."""
        if revision == index.stamp.revision + 1:
            index.stamp = replace(index.stamp, revision=revision)

    def removed(self, index: SearchIndex, ids: list[int], revision: int) -> None:
        """Faces just deleted from the database, out of ``index``; then saved (a kind that
        cannot remove is rebuilt without them)."""
        with self.memory:
            if index.spec.removes:
                index.remove(np.asarray(ids, dtype=np.int64))
                self._advance(index, revision)
            self._dirty = True
        self.save()

    def forget(self) -> None:
        """Drop the in-memory index (the gallery was bound to another encoder)."""
        with self.memory:
            self._index = None

    def reset(self) -> None:
        """Rebuild from the database and save (every embedding changed: re-embed)."""
        with self.lock, self.memory:
            self._index, self._dirty = None, True
            self.save()

    def save(self) -> None:
        """Write the index file if it changed (under the lock, re-synced first)."""
        if not self._dirty:
            return
        with self.lock, self.memory:
            index = self.synced()
            self.backend(index.spec).save(index)
            self._dirty = False

    def for_query(self) -> SearchIndex:
        """Queries never wait on an enroll: repair in memory, save only if the lock is free.
        The caller holds ``memory`` while it searches (an enroll may be adding to it)."""
        index = self.synced()
        if self._dirty and self.lock.acquire(blocking=False):
            try:
                self.save()
            finally:
                self.lock.release()
        return index

    def choose(self, kind: str, **params: Any) -> IndexSpec:
        """Set the index kind and search effort (Milvus: its place); the index is built now if
        the kind or place changed (unset parameters keep their stored or default values; the
        index file does not hold search efforts, so changing them rewrites nothing)."""
        current = self.spec
        merged = {**(current.params() if current.kind == kind else {}), **params}
        spec = IndexSpec.parse(kind, merged)
        if spec == current:
            return spec
        with self.lock:
            if (spec.kind, spec.place) != (current.kind, current.place) and self.store.state().dim is not None:
                with self.memory:  # built (and saved) before it is chosen: a place that fails changes nothing
                    index = self._sync(spec)
                    self.backend(spec).save(index)
                    self._dirty = False
            self.store.set_index_spec(spec.kind, spec.params())  # search parameters apply on the next use
        return spec

    def info(self, state: GalleryState | None = None) -> dict[str, Any]:
        """The index's kind, search parameters and whether its file is up to date."""
        spec = self.spec
        backend = self.backend(spec)
        stamp = backend.stamp()
        return {
            "path": backend.where,
            "kind": spec.kind,
            "params": spec.params(),
            "exists": stamp is not None,
            "up_to_date": bool(stamp and stamp.describes(state or self.store.state())),
            "gpu": _gpu_available() if self.gpu is None else self.gpu,
        }


def _gpu_available() -> bool:
    from facesearch.index.faiss_index import gpu_available

    return gpu_available()
