"""A FAISS index kept on disk: one file (HOME/index.faiss), the ``IndexStore`` of the FAISS kinds.

The file is a header stamped with the database state it reflects (gallery uuid, revision,
encoder fingerprint), a CRC of the payload, and the serialised index, written atomically.
Anything that does not check out (missing, truncated, corrupt, foreign) is reported as
``IndexFileError`` and the gallery rebuilds the index from the database.
"""

from __future__ import annotations

import json
import logging
import struct
import zlib
from dataclasses import asdict
from pathlib import Path

import faiss
import numpy as np

from facesearch.fileio import atomic_write
from facesearch.index.base import StoredVectors
from facesearch.index.faiss_index import FaceIndex
from facesearch.index.spec import FAISS_KINDS, SQ_BITS, DatabaseState, IndexSpec, IndexStamp

log = logging.getLogger(__name__)

MAGIC = b"FSINDEX1"
_HEADER = struct.Struct("<8sI")  # magic, header length
_FAISS_TYPES = {"ivf": "IndexIVFFlat", "ivf-sq8": "IndexIVFScalarQuantizer", "ivf-sq6": "IndexIVFScalarQuantizer",
                "ivf-pq": "IndexIVFPQ"}


class IndexFileError(Exception):
    """The index file is missing, truncated, corrupt or not ours: rebuild it."""


def write_index(index: FaceIndex, path: str | Path) -> None:
    """The index and its stamp, atomically (a crash leaves the old file or the new one)."""
    payload = faiss.serialize_index(index.cpu).tobytes()
    header = json.dumps({"stamp": asdict(index.stamp), "size": len(payload), "crc32": zlib.crc32(payload)}).encode()
    with atomic_write(path) as handle:
        handle.write(_HEADER.pack(MAGIC, len(header)))
        handle.write(header)
        handle.write(payload)


def read_index(path: str | Path, use_gpu: bool | None = None, stored: StoredVectors | None = None) -> FaceIndex:
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
    expected = getattr(faiss, _FAISS_TYPES.get(stamp.kind, "IndexIDMap2"))
    if stamp.kind not in FAISS_KINDS or not isinstance(inner, expected) or inner.d != stamp.dim or (
        stamp.kind in SQ_BITS and inner.code_size != (stamp.dim * SQ_BITS[stamp.kind] + 7) // 8
    ):
        raise IndexFileError(f"{path}: corrupt (unexpected index type or dimension)")
    index = FaceIndex(stamp.dim, stamp, use_gpu, stored=stored)  # an empty flat shell, then the real contents
    index.cpu, index.stamp = inner, stamp
    index.tune(IndexSpec(stamp.kind))
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


class FaissFile:
    """Where a gallery's FAISS index is kept: one file. ``stored`` is the database's vector
    lookup, given to every index it makes or loads (the compressed kinds re-rank on it)."""

    def __init__(self, path: Path, gpu: bool | None = None, stored: StoredVectors | None = None) -> None:
        self.path, self.gpu, self.stored = path, gpu, stored

    @property
    def where(self) -> str:
        return str(self.path)

    def load(self, state: DatabaseState) -> FaceIndex | None:
        """The saved index, or None when there is none that checks out (then: rebuild)."""
        try:
            return read_index(self.path, self.gpu, self.stored)
        except IndexFileError as exc:
            if self.path.exists():
                log.warning("index %s; rebuilding it from the database", exc)
            return None

    def create(self, stamp: IndexStamp, spec: IndexSpec, sample: np.ndarray | None, size: int) -> FaceIndex:
        return FaceIndex(stamp.dim, stamp, self.gpu, spec, sample, size, self.stored)

    def save(self, index: FaceIndex) -> None:
        write_index(index, self.path)

    def stamp(self) -> IndexStamp | None:
        return read_stamp(self.path)

    def drop(self) -> None:
        self.path.unlink(missing_ok=True)

    def close(self) -> None:
        pass
