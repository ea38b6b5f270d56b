"""The FAISS index over the gallery's embeddings: derived data, never the truth.

Inner product (cosine, as embeddings are L2-normalised) keyed by the database's face ids, in
one of three kinds the gallery chooses (``IndexSpec``): ``flat`` (exact, the default),
``ivf`` (inverted lists over k-means cells; approximate, much faster on large galleries),
``hnsw`` (a neighbour graph; approximate, cannot remove vectors, so a removal rebuilds it), or
the compressed IVF kinds for galleries that would not fit in memory: ``ivf-sq8`` (8 bits per
dimension: its codes are 1/4 of flat's floats, the face id on top), ``ivf-sq6`` (6 bits, 3/16)
and ``ivf-pq`` (product quantisation, one byte per 8 dimensions, 1/32). Approximate kinds may miss the nearest image, but every score they return is its exact
cosine, so the threshold means the same thing whatever the kind: the compressed kinds re-rank
their best candidates on the float vectors the database stores (``FaceIndex.exact``). The CPU index is the master,
because FAISS GPU indexes cannot remove vectors; when faiss has GPU support and CUDA is
present, flat and IVF searches go to a GPU mirror of it. On disk the index is one file: a
header stamped with the database state it reflects (gallery uuid, revision, encoder
fingerprint), a CRC of the payload, and the serialised index, written atomically. Anything
that does not check out is rebuilt from the database.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import struct
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import faiss
import numpy as np

from facesearch.errors import InputError
from facesearch.fileio import atomic_write
from facesearch.gallery.store import GalleryState

log = logging.getLogger(__name__)

FEW_QUERIES = 8
FEW_VECTORS = 20_000
"""A search of FEW_QUERIES queries or fewer in an index of FEW_VECTORS or fewer runs on one
OpenMP thread: waking FAISS's threads costs more than such a search, and right after
onnxruntime has run (whose threads still spin) it cost 4 ms instead of 0.05 for one query on
600 faces (benchmarks/answering.py). On a large flat index the threads pay: one query on 1M
faces took 332 ms on one thread (benchmarks/scale.py, before this bound)."""


@contextlib.contextmanager
def _few_threads(few: bool) -> Iterator[None]:
    if not few:
        yield
        return
    threads = faiss.omp_get_max_threads()  # OpenMP keeps the count per calling thread
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)

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
    def of(cls, state: GalleryState, dim: int) -> "IndexStamp":
        return cls(state.uuid, state.revision, state.fingerprint, dim)

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


def _new_faiss_index(dim: int, kind: str, sample: np.ndarray | None, size: int) -> faiss.Index:
    """An empty index of that kind, keyed by face ids (IVF: cells for a gallery of ``size``,
    fitted to ``sample``)."""
    if kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if kind == "hnsw":
        graph = faiss.IndexHNSWFlat(dim, HNSW_LINKS, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        return faiss.IndexIDMap2(graph)
    # IVF keeps face ids in its lists itself: an IDMap over it could not remove correctly.
    sample = np.ascontiguousarray(sample if sample is not None else np.zeros((0, dim)), dtype=np.float32)
    cells, quantiser = ivf_cells(size), faiss.IndexFlatIP(dim)
    if kind == "ivf":
        ivf = faiss.IndexIVFFlat(quantiser, dim, cells, faiss.METRIC_INNER_PRODUCT)
    elif kind in SQ_BITS:
        codes = getattr(faiss.ScalarQuantizer, f"QT_{SQ_BITS[kind]}bit")
        ivf = faiss.IndexIVFScalarQuantizer(quantiser, dim, cells, codes, faiss.METRIC_INNER_PRODUCT)
    else:
        ivf = faiss.IndexIVFPQ(quantiser, dim, cells, pq_codes(dim), pq_bits(len(sample)), faiss.METRIC_INNER_PRODUCT)
    ivf.cp.min_points_per_centroid = 1  # a small gallery gets few cells, and that is fine
    ivf.cp.niter = IVF_KMEANS_ITERATIONS
    if len(sample):
        ivf.train(sample)
    return ivf


def pq_codes(dim: int) -> int:
    """Sub-quantisers of ivf-pq: one per PQ_DIMS_PER_CODE dimensions (a divisor of ``dim``)."""
    codes = max(1, dim // PQ_DIMS_PER_CODE)
    while dim % codes:
        codes -= 1
    return codes


def pq_bits(training: int) -> int:
    """Bits per code: 8 (256 centroids per sub-quantiser) once there are enough faces to fit
    them, fewer on a small gallery (k-means needs at least as many points as centroids)."""
    return int(max(1, min(8, math.floor(math.log2(max(training, 2))))))


_FAISS_TYPES = {"ivf": "IndexIVFFlat", "ivf-sq8": "IndexIVFScalarQuantizer", "ivf-sq6": "IndexIVFScalarQuantizer",
                "ivf-pq": "IndexIVFPQ"}


StoredVectors = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""ids -> (the ids still stored, in ascending order, and their float vectors): the database."""


def rerank(queries: np.ndarray, candidates: np.ndarray, k: int, stored: StoredVectors) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of each query's candidate ids by their exact cosine on the stored float
    vectors (ids -1 and candidates no longer stored are dropped; -1 pads a short row)."""
    found, vectors = stored(np.unique(candidates[candidates >= 0]))
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


class FaceIndex:
    """Inner-product search over (face id, embedding) pairs, exact or approximate."""

    def __init__(
        self,
        dim: int,
        stamp: IndexStamp,
        use_gpu: bool | None = None,
        spec: IndexSpec = IndexSpec(),
        sample: np.ndarray | None = None,
        size: int | None = None,
    ) -> None:
        """IVF only: ``sample``, ``training_size`` vectors of the gallery to fit the cells on;
        ``size``, the gallery size the cells are for (default: the sample's)."""
        self.dim = dim
        self.spec = spec
        size = (len(sample) if sample is not None else 0) if size is None else size
        trained_for = size if spec.kind in IVF_KINDS and sample is not None and len(sample) else 0
        self.stamp = IndexStamp(stamp.uuid, stamp.revision, stamp.fingerprint, dim, spec.kind, trained_for)
        self.cpu = _new_faiss_index(dim, spec.kind, sample, size)
        self.use_gpu = gpu_available() if use_gpu is None else use_gpu
        self._gpu: faiss.Index | None = None
        self._gpu_resources = None
        self.exact: StoredVectors | None = None
        """Compressed kinds: where the float vectors are (the gallery's database), to re-rank."""
        self.tune(spec)

    def tune(self, spec: IndexSpec) -> None:
        """Apply the search parameters of ``spec`` (same kind) without rebuilding."""
        self.spec = spec
        inner = self._inner()
        if isinstance(inner, faiss.IndexIVF):
            inner.nprobe = spec.nprobe
        elif isinstance(inner, faiss.IndexHNSW):
            inner.hnsw.efSearch = spec.ef_search
        self._gpu = None

    def _inner(self) -> faiss.Index:
        return faiss.downcast_index(self.cpu.index) if isinstance(self.cpu, faiss.IndexIDMap2) else self.cpu

    def outgrown(self, size: int) -> bool:
        """Is this an IVF index not yet fitted, or fitted to a much smaller gallery? Rebuild it."""
        if self.spec.kind not in IVF_KINDS:
            return False
        trained = self.stamp.trained_for
        return size > 0 and (trained == 0 or size > IVF_REBUILD_GROWTH * max(trained, IVF_TRAINING_PER_CELL))

    @property
    def ntotal(self) -> int:
        return int(self.cpu.ntotal)

    def ids(self) -> np.ndarray:
        if isinstance(self.cpu, faiss.IndexIDMap2):
            return faiss.vector_to_array(self.cpu.id_map).astype(np.int64)
        lists = self.cpu.invlists
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(cell), lists.list_size(cell)).copy()
            for cell in range(lists.nlist)
            if lists.list_size(cell)
        ]
        return np.sort(np.concatenate(parts)).astype(np.int64) if parts else np.zeros(0, np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        self.cpu.add_with_ids(vectors, ids)
        if self._gpu is not None:
            self._gpu.add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray) -> int:
        """Delete these face ids; an HNSW index cannot, and the caller must rebuild it."""
        if len(ids) == 0:
            return 0
        if not self.spec.removes:
            raise NotImplementedError("an HNSW index cannot remove vectors; rebuild it")
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
        compressed = self.spec.kind in COMPRESSED
        if compressed and self.exact is None:
            raise RuntimeError(f"a {self.spec.kind} index answers only with its stored vectors (FaceIndex.exact) to re-rank")
        wanted = min(max(k * RERANK_FACTOR, self.spec.rerank), max(self.ntotal, 1)) if compressed else k
        with _few_threads(len(queries) <= FEW_QUERIES and self.ntotal <= FEW_VECTORS):
            scores, ids = self._searcher().search(queries, wanted)
        if compressed:
            scores, ids = rerank(queries, ids, k, self.exact)  # type: ignore[arg-type]
        return np.clip(scores, -1.0, 1.0, out=scores), ids

    def _searcher(self) -> faiss.Index:
        if not self.use_gpu or self.ntotal == 0 or self.spec.kind == "hnsw":  # no GPU HNSW in FAISS
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
        expected = getattr(faiss, _FAISS_TYPES.get(stamp.kind, "IndexIDMap2"))
        if stamp.kind not in FAISS_KINDS or not isinstance(inner, expected) or inner.d != stamp.dim or (
            stamp.kind in SQ_BITS and inner.code_size != (stamp.dim * SQ_BITS[stamp.kind] + 7) // 8
        ):
            raise IndexFileError(f"{path}: corrupt (unexpected index type or dimension)")
        index = cls(stamp.dim, stamp, use_gpu)  # an empty flat shell, then the real contents
        index.cpu, index.stamp = inner, stamp
        index.tune(IndexSpec(stamp.kind))
        return index


class FaissFile:
    """Where a gallery's FAISS index is kept: one file (HOME/index.faiss). The other index
    backend, a Milvus collection (facesearch.index.milvus), has the same methods."""

    def __init__(self, path: Path, gpu: bool | None = None) -> None:
        self.path, self.gpu = path, gpu

    @property
    def where(self) -> str:
        return str(self.path)

    def load(self, state: GalleryState) -> "FaceIndex | None":
        """The saved index, or None when there is none that checks out (then: rebuild)."""
        try:
            return FaceIndex.load(self.path, self.gpu)
        except IndexFileError as exc:
            if self.path.exists():
                log.warning("index %s; rebuilding it from the database", exc)
            return None

    def create(self, stamp: IndexStamp, spec: IndexSpec, sample: np.ndarray | None, size: int) -> "FaceIndex":
        return FaceIndex(stamp.dim, stamp, self.gpu, spec, sample, size)

    def save(self, index: "FaceIndex") -> None:
        index.save(self.path)

    def stamp(self) -> IndexStamp | None:
        return read_stamp(self.path)

    def drop(self) -> None:
        self.path.unlink(missing_ok=True)

    def close(self) -> None:
        pass


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
