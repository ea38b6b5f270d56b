"""A gallery's search index: derived from its database, kept in memory and in HOME/index.faiss.

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
from facesearch.home import Home
from facesearch.index import (
    FaceIndex,
    IndexFileError,
    IndexSpec,
    IndexStamp,
    gpu_available,
    ivf_cells,
    read_stamp,
    training_size,
)
from facesearch.locking import GalleryLock
from facesearch.store import GalleryState, Store

log = logging.getLogger(__name__)


class GalleryIndex:
    """The index of the gallery in ``home`` whose rows are in ``store``."""

    def __init__(self, home: Home, store: Store, lock: GalleryLock, gpu: bool | None = None) -> None:
        self.home, self.store, self.lock, self.gpu = home, store, lock, gpu
        self.memory = threading.RLock()
        self._index: FaceIndex | None = None
        self._dirty = False

    @property
    def spec(self) -> IndexSpec:
        return IndexSpec.parse(*self.store.index_spec())

    def synced(self) -> FaceIndex:
        """The in-memory index, made to agree with the database if it does not."""
        with self.memory:
            return self._sync()

    def _sync(self) -> FaceIndex:
        state = self.store.state()
        if state.dim is None:
            raise GalleryError(f"the gallery in {self.home.root} is empty: run `facesearch enroll` first")
        spec = self.spec
        index = self._index
        from_disk = index is None
        if from_disk:
            index = self._read_file()
        if (
            index is None
            or not index.stamp.same_gallery(state)
            or index.dim != state.dim
            or index.spec.kind != spec.kind
        ):
            index = self._new(state, spec)
        elif index.spec != spec:
            index.tune(spec)
        if not index.stamp.describes(state):
            if from_disk and self.home.index.exists():
                log.warning("index %s does not match the database; repairing it", self.home.index)
            index = self._reconcile(index)
        self._index = index
        return index

    def _new(self, state: GalleryState, spec: IndexSpec) -> FaceIndex:
        """An empty index of the gallery's kind (an IVF one fitted to a sample of its faces)."""
        sample, size = None, 0
        if spec.kind == "ivf":
            _, db_ids = self.store.snapshot_ids()
            size, wanted = len(db_ids), training_size(spec, len(db_ids))
            chosen = np.sort(np.random.default_rng(0).choice(db_ids, wanted, replace=False))
            sample = self.store.embeddings(chosen, state.dim)[1]
            log.info("fitting %d IVF cells on %d of %d faces", ivf_cells(size), wanted, size)
        index = FaceIndex(state.dim, IndexStamp.of(state, state.dim), self.gpu, spec, sample, size)
        index.stamp = replace(index.stamp, revision=-1)
        return index

    def _read_file(self) -> FaceIndex | None:
        try:
            return FaceIndex.load(self.home.index, self.gpu)
        except IndexFileError as exc:
            if self.home.index.exists():
                log.warning("index %s; rebuilding it from the database", exc)
            return None

    def _reconcile(self, index: FaceIndex) -> FaceIndex:
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

    def added(self, index: FaceIndex, ids: list[int], vectors: np.ndarray, revision: int) -> None:
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
    def _advance(index: FaceIndex, revision: int) -> None:
        """Stamp ``index`` with the revision of the change just applied to it, if it held
        every change before that one. Homes sharing one database (PostgreSQL) do not share a
        lock: another home's commit may have slipped in between, and then the index stays
        stamped older, to be reconciled by ids on its next use."""
        if revision == index.stamp.revision + 1:
            index.stamp = replace(index.stamp, revision=revision)

    def removed(self, index: FaceIndex, ids: list[int], revision: int) -> None:
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
            index.save(self.home.index)
            self._dirty = False

    def for_query(self) -> FaceIndex:
        """Queries never wait on an enroll: repair in memory, save only if the lock is free.
        The caller holds ``memory`` while it searches (an enroll may be adding to it)."""
        index = self.synced()
        if self._dirty and self.lock.acquire(blocking=False):
            try:
                self.save()
            finally:
                self.lock.release()
        return index

    def choose(self, kind: str, **params: int) -> IndexSpec:
        """Set the index kind and search effort; the index is rebuilt now if the kind changed
        (unset parameters keep their stored or default values; the index file does not hold
        them, so changing them rewrites nothing)."""
        current = self.spec
        merged = {**(current.params() if current.kind == kind else {}), **params}
        spec = IndexSpec.parse(kind, merged)
        if spec == current:
            return spec
        with self.lock:
            self.store.set_index_spec(spec.kind, spec.params())
            if spec.kind != current.kind and self.store.state().dim is not None:
                self._dirty = True
                self.save()  # search parameters alone are applied on the next use
        return spec

    def rebuild(self) -> int:
        """Rebuild from the database from scratch; returns the vector count."""
        with self.lock, self.memory:
            self.home.index.unlink(missing_ok=True)
            self.reset()
            return self._index.ntotal if self._index else 0

    def info(self, state: GalleryState | None = None) -> dict[str, Any]:
        """The index's kind, search parameters and whether its file is up to date."""
        spec, stamp = self.spec, read_stamp(self.home.index)
        return {
            "path": str(self.home.index),
            "kind": spec.kind,
            "params": spec.params(),
            "exists": stamp is not None,
            "up_to_date": bool(stamp and stamp.describes(state or self.store.state())),
            "gpu": gpu_available() if self.gpu is None else self.gpu,
        }
