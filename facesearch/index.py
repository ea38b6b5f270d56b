"""The FAISS index over the gallery's embeddings: derived data, never the truth.

An ``IndexIDMap2`` over exact inner product (cosine, as embeddings are L2-normalised) keyed
by the database's face ids. The CPU index is the master, because FAISS GPU indexes cannot
remove vectors; when faiss has GPU support and CUDA is present, searches go to a GPU mirror
of it. On disk the index is one file: a header stamped with the database state it reflects
(gallery uuid, revision, encoder fingerprint), a CRC of the payload, and the serialised
index, written atomically. Anything that does not check out is rebuilt from the database.
"""

from __future__ import annotations

import json
import logging
import struct
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np

from facesearch.fileio import atomic_write
from facesearch.store import GalleryState

log = logging.getLogger(__name__)

MAGIC = b"FSINDEX1"

# Exact search answers a batch of at least this many queries with one BLAS matrix product,
# smaller batches with SIMD dot products. faiss-cpu 1.15 wheels ship 128000, which sends every
# realistic batch down the slow path: measured 10x slower than numpy's matmul on 2 cores
# (benchmarks/results/speed.md). FAISS's long-standing value is 20. A lower value set by the
# caller is left alone.
BLAS_THRESHOLD = 20
if faiss.cvar.distance_compute_blas_threshold > BLAS_THRESHOLD:
    faiss.cvar.distance_compute_blas_threshold = BLAS_THRESHOLD
_HEADER = struct.Struct("<8sI")  # magic, header length


class IndexFileError(Exception):
    """The index file is missing, truncated, corrupt or not ours: rebuild it."""


@dataclass(frozen=True)
class IndexStamp:
    uuid: str
    revision: int
    fingerprint: str | None
    dim: int
    kind: str = "flat"

    @classmethod
    def of(cls, state: GalleryState, dim: int, kind: str = "flat") -> "IndexStamp":
        return cls(state.uuid, state.revision, state.fingerprint, dim, kind)

    def describes(self, state: GalleryState) -> bool:
        """Does this index hold exactly the faces of that database state?"""
        return (
            self.uuid == state.uuid
            and self.revision == state.revision
            and self.fingerprint == state.fingerprint
        )

    def same_gallery(self, state: GalleryState) -> bool:
        """Same database and encoder: its vectors are valid, though maybe not all of them."""
        return self.uuid == state.uuid and self.fingerprint == state.fingerprint


def gpu_available() -> bool:
    """faiss built with GPU support and at least one GPU visible."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


class FaceIndex:
    """Exact inner-product search over (face id, embedding) pairs."""

    def __init__(self, dim: int, stamp: IndexStamp, use_gpu: bool | None = None) -> None:
        self.dim = dim
        self.stamp = stamp
        self.cpu = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self.use_gpu = gpu_available() if use_gpu is None else use_gpu
        self._gpu: faiss.Index | None = None
        self._gpu_resources = None

    @property
    def ntotal(self) -> int:
        return int(self.cpu.ntotal)

    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self.cpu.id_map).astype(np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        self.cpu.add_with_ids(vectors, ids)
        if self._gpu is not None:
            self._gpu.add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray) -> int:
        if len(ids) == 0:
            return 0
        removed = int(self.cpu.remove_ids(np.ascontiguousarray(ids, dtype=np.int64)))
        self._gpu = None  # GPU indexes cannot remove: re-mirror from the CPU master lazily
        return removed

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), best first; ids are -1 where fewer than k vectors exist.

        Scores are cosines clipped to [-1, 1]: float32 rounding puts an image's similarity to
        itself anywhere in 1 +- 5e-7, and which path (BLAS or SIMD, set by the batch size)
        computed it moves the last bits, so never rely on a score landing exactly on 1.0.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        k = max(1, min(k, max(self.ntotal, 1)))
        scores, ids = self._searcher().search(queries, k)
        return np.clip(scores, -1.0, 1.0, out=scores), ids

    def _searcher(self) -> faiss.Index:
        if not self.use_gpu or self.ntotal == 0:
            return self.cpu
        if self._gpu is None:
            try:
                self._gpu_resources = self._gpu_resources or faiss.StandardGpuResources()
                self._gpu = faiss.index_cpu_to_gpu(self._gpu_resources, 0, self.cpu)
            except Exception as exc:  # noqa: BLE001 (any GPU failure: fall back, don't fail)
                log.warning("GPU FAISS unavailable (%s); searching on the CPU", exc)
                self.use_gpu = False
                return self.cpu
        return self._gpu

    # --- persistence --------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        payload = faiss.serialize_index(self.cpu).tobytes()
        header = json.dumps(
            {"stamp": asdict(self.stamp), "size": len(payload), "crc32": zlib.crc32(payload)}
        ).encode()
        with atomic_write(path) as handle:
            handle.write(_HEADER.pack(MAGIC, len(header)))
            handle.write(header)
            handle.write(payload)

    @classmethod
    def load(cls, path: str | Path, use_gpu: bool | None = None) -> "FaceIndex":
        """Read an index file, verifying it whole; raises IndexFileError if it does not check out."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise IndexFileError(f"{path}: missing") from None
        except OSError as exc:
            raise IndexFileError(f"{path}: unreadable ({exc})") from None
        try:
            magic, length = _HEADER.unpack_from(data, 0)
            if magic != MAGIC:
                raise ValueError("not a facesearch index file")
            header = json.loads(data[_HEADER.size : _HEADER.size + length])
            payload = data[_HEADER.size + length :]
            if len(payload) != header["size"]:
                raise ValueError(f"truncated ({len(payload)} of {header['size']} bytes)")
            if zlib.crc32(payload) != header["crc32"]:
                raise ValueError("checksum mismatch")
            stamp = IndexStamp(**header["stamp"])
            # deserialize_index already returns the concrete type; downcasting a temporary
            # would free the index under us.
            inner = faiss.deserialize_index(np.frombuffer(payload, dtype=np.uint8))
        except (ValueError, KeyError, TypeError, struct.error, RuntimeError) as exc:
            raise IndexFileError(f"{path}: corrupt ({exc})") from None
        index = cls(stamp.dim, stamp, use_gpu)
        if not isinstance(inner, faiss.IndexIDMap2) or inner.d != stamp.dim:
            raise IndexFileError(f"{path}: corrupt (unexpected index type or dimension)")
        index.cpu = inner
        return index


def read_stamp(path: str | Path) -> IndexStamp | None:
    """The stamp of an index file from its header alone (cheap), or None if unreadable."""
    try:
        with Path(path).open("rb") as handle:
            magic, length = _HEADER.unpack(handle.read(_HEADER.size))
            if magic != MAGIC:
                return None
            return IndexStamp(**json.loads(handle.read(length))["stamp"])
    except (OSError, ValueError, KeyError, TypeError, struct.error):
        return None
