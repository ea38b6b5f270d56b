"""What a gallery's index is: its kind and search effort (``IndexSpec``), and the database
state an index reflects (``IndexStamp``). Plain data, no FAISS: the CLI reads the kinds from
here without loading any search library, and every backend shares these types.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from facesearch.errors import InputError

KINDS = ("flat", "ivf", "hnsw", "ivf-sq8", "ivf-sq6", "ivf-pq", "milvus")
"""All but milvus are FAISS indexes in HOME/index.faiss; milvus is a collection on a Milvus
server or in a Milvus Lite file (facesearch.index.milvus), the same interface."""
FAISS_KINDS = ("flat", "ivf", "hnsw", "ivf-sq8", "ivf-sq6", "ivf-pq")
IVF_KINDS = ("ivf", "ivf-sq8", "ivf-sq6", "ivf-pq")
COMPRESSED = ("ivf-sq8", "ivf-sq6", "ivf-pq")
SQ_BITS = {"ivf-sq8": 8, "ivf-sq6": 6}  # the scalar-quantised kinds: bits a dimension
PQ_DIMS_PER_CODE = 8  # ivf-pq: one byte codes 8 dimensions (64 bytes for a 512-d face)
PQ_TRAINING = 10_240  # ivf-pq's training sample at least: 40 points for each of a code's 256 values
RERANK_FACTOR = 8  # compressed kinds: exact scores for this many candidates per result asked
RERANK = 64  # ... and at least this many a query (the ``rerank`` search parameter's default)
HNSW_LINKS = 32  # M: graph degree; memory grows by 2 M ids per vector
HNSW_EF_CONSTRUCTION = 64
IVF_POINTS_PER_CELL = 39  # FAISS's floor for a meaningful k-means cell
IVF_TRAINING_PER_CELL = 40  # k-means sample per cell (FAISS warns below 39)
# 10 iterations on 40 faces per cell trained 3.7x faster at 100k than FAISS's 25 on 64, for
# recall@1 0.995 against 1.000 at nprobe 16 (ad-hoc measurement on face-like vectors).
IVF_KMEANS_ITERATIONS = 10
IVF_REBUILD_GROWTH = 4  # retrain once the gallery has grown this much since the last training
_NUMBERS = {"nprobe": IVF_KINDS, "ef_search": ("hnsw",), "rerank": COMPRESSED}  # the kinds each applies to
_WORDS = {"uri": "milvus", "collection": "milvus"}




class DatabaseState(Protocol):
    """What a stamp is compared with: the gallery database's state (``GalleryState``)."""

    uuid: str
    revision: int
    fingerprint: str | None


@dataclass(frozen=True)
class IndexSpec:
    """The gallery's choice of index and its search effort (or place, for Milvus).

    ``nprobe`` (IVF: cells visited per query), ``ef_search`` (HNSW: beam width) and ``rerank``
    (compressed kinds: candidates scored exactly on the stored vectors) trade speed for recall;
    benchmarks/results/speed.md and scale.md have the measured curves behind the defaults. The
    compressed codes rank worse as the gallery grows (more faces crowd each one's neighbourhood),
    so past a few million faces ``rerank`` matters more than ``nprobe``.
    ``uri`` (Milvus: ``http://host:19530``, or a Milvus Lite file ``*.db``; default: one in the
    home) and ``collection`` (default: named after the gallery's uuid) say where its vectors are.
    """

    kind: str = "flat"
    nprobe: int = 64
    ef_search: int = 128
    rerank: int = RERANK
    uri: str | None = None
    collection: str | None = None

    @classmethod
    def parse(cls, kind: str, params: dict[str, Any] | None = None) -> "IndexSpec":
        """Validate user input into a spec (unknown kinds and non-positive efforts are refused)."""
        if kind not in KINDS:
            raise InputError(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")
        params = {name: value for name, value in (params or {}).items() if value is not None}
        unknown = set(params) - set(_NUMBERS) - set(_WORDS)
        if unknown:
            raise InputError(f"unknown index parameter(s): {', '.join(sorted(unknown))}")
        for name, value in params.items():
            if name in _NUMBERS and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise InputError(f"index parameter {name} must be a positive integer, not {value!r}")
            if name in _WORDS and (not isinstance(value, str) or not value):
                raise InputError(f"index parameter {name} must be a non-empty string, not {value!r}")
            if name in _WORDS and kind != _WORDS[name]:
                raise InputError(f"--{name} is for the {_WORDS[name]} index kind, not {kind}")
            if name in _NUMBERS and kind not in _NUMBERS[name]:
                flag = name.replace("_", "-")
                raise InputError(f"--{flag} is for the {', '.join(_NUMBERS[name])} index kinds, not {kind}")
        return cls(kind, **params)

    def params(self) -> dict[str, Any]:
        """The parameters that apply to this kind (stored with the gallery)."""
        if self.kind == "milvus":
            return {k: v for k, v in (("uri", self.uri), ("collection", self.collection)) if v is not None}
        if self.kind in COMPRESSED:
            return {"nprobe": self.nprobe, "rerank": self.rerank}
        if self.kind in IVF_KINDS:
            return {"nprobe": self.nprobe}
        return {"hnsw": {"ef_search": self.ef_search}}.get(self.kind, {})

    @property
    def removes(self) -> bool:
        """Can this kind delete vectors in place? (HNSW graphs cannot.)"""
        return self.kind != "hnsw"

    @property
    def place(self) -> tuple[str | None, str | None]:
        """Where the vectors live, beyond the kind: another place is another index."""
        return self.uri, self.collection


def ivf_cells(size: int) -> int:
    """k-means cells for a gallery of ``size`` vectors: about 4 sqrt(N), at least 39 vectors each."""
    return max(1, min(int(4 * math.sqrt(size)), size // IVF_POINTS_PER_CELL))


def training_size(spec: IndexSpec, size: int) -> int:
    """How many gallery vectors the index must be trained on before vectors are added."""
    if spec.kind not in IVF_KINDS:
        return 0
    wanted = IVF_TRAINING_PER_CELL * ivf_cells(size)
    return min(size, max(wanted, PQ_TRAINING) if spec.kind == "ivf-pq" else wanted)


@dataclass(frozen=True)
class IndexStamp:
    uuid: str
    revision: int
    fingerprint: str | None
    dim: int
    kind: str = "flat"
    trained_for: int = 0  # IVF: the gallery size its cells were fitted to

    @classmethod
    def of(cls, state: DatabaseState, dim: int) -> "IndexStamp":
        return cls(state.uuid, state.revision, state.fingerprint, dim)

    def describes(self, state: DatabaseState) -> bool:
        """Does this index hold exactly the faces of that database state?"""
        return (
            self.uuid == state.uuid
            and self.revision == state.revision
            and self.fingerprint == state.fingerprint
        )

    def same_gallery(self, state: DatabaseState) -> bool:
        """Same database and encoder: its vectors are valid, though maybe not all of them."""
        return self.uuid == state.uuid and self.fingerprint == state.fingerprint
