"""The FAISS kinds of index, in memory: exact (``flat``), IVF cells (``ivf`` and the compressed
``ivf-sq8``, ``ivf-sq6``, ``ivf-pq``) or a neighbour graph (``hnsw``), keyed by face ids.

Approximate kinds may miss the nearest image, but every score they return is its exact cosine:
the compressed kinds re-rank their best candidates on the float vectors the database stores
(the ``stored`` lookup given at construction). The CPU index is the master, because FAISS GPU
indexes cannot remove vectors; when faiss has GPU support and CUDA is present, flat and IVF
searches go to a GPU mirror of it. How the index is kept on disk is ``faiss_file``.
"""

from __future__ import annotations

import contextlib
import math
import logging
from collections.abc import Iterator

import faiss
import numpy as np

from facesearch.index.base import StoredVectors
from facesearch.index.rerank import rerank
from facesearch.index.spec import (
    COMPRESSED,
    HNSW_EF_CONSTRUCTION,
    HNSW_LINKS,
    IVF_KINDS,
    IVF_KMEANS_ITERATIONS,
    IVF_REBUILD_GROWTH,
    IVF_TRAINING_PER_CELL,
    PQ_DIMS_PER_CODE,
    RERANK_FACTOR,
    SQ_BITS,
    IndexSpec,
    IndexStamp,
    ivf_cells,
)

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


# Exact search answers a batch of at least this many queries with one BLAS matrix product,
# smaller batches with SIMD dot products. faiss-cpu 1.15 wheels ship 128000, which sends every
# realistic batch down the slow path: measured 10x slower than numpy's matmul on 2 cores
# (benchmarks/results/speed.md). FAISS's long-standing value is 20. A lower value set by the
# caller is left alone.
BLAS_THRESHOLD = 20
if faiss.cvar.distance_compute_blas_threshold > BLAS_THRESHOLD:
    faiss.cvar.distance_compute_blas_threshold = BLAS_THRESHOLD


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
        stored: StoredVectors | None = None,
    ) -> None:
        """IVF only: ``sample``, ``training_size`` vectors of the gallery to fit the cells on;
        ``size``, the gallery size the cells are for (default: the sample's). Compressed
        kinds: ``stored``, where the float vectors are (the gallery's database), to re-rank."""
        self.dim = dim
        self.spec = spec
        size = (len(sample) if sample is not None else 0) if size is None else size
        trained_for = size if spec.kind in IVF_KINDS and sample is not None and len(sample) else 0
        self.stamp = IndexStamp(stamp.uuid, stamp.revision, stamp.fingerprint, dim, spec.kind, trained_for)
        self.cpu = _new_faiss_index(dim, spec.kind, sample, size)
        self.use_gpu = gpu_available() if use_gpu is None else use_gpu
        self._gpu: faiss.Index | None = None
        self._gpu_resources = None
        self.stored = stored
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
        if compressed and self.stored is None:
            raise RuntimeError(f"a {self.spec.kind} index answers only with its stored vectors (``stored``) to re-rank")
        wanted = min(max(k * RERANK_FACTOR, self.spec.rerank), max(self.ntotal, 1)) if compressed else k
        with _few_threads(len(queries) <= FEW_QUERIES and self.ntotal <= FEW_VECTORS):
            scores, ids = self._searcher().search(queries, wanted)
        if compressed:
            scores, ids = rerank(queries, ids, k, self.stored)
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
