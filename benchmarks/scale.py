"""Galleries of millions of faces: the compressed index kinds against exact search.

    python benchmarks/scale.py [--sizes 1000000,2000000] [--queries 1000] [--out benchmarks/results]

Face-like 512-d unit vectors (benchmarks/run.py's ``face_like_vectors``: 4 photos a person,
queries are one more photo of each; past ``--flat-max`` written to a file-backed array). For each size: exact top-1 by a blocked numpy matrix
product (the ground truth, and the baseline timed in the same run); ``flat`` (FAISS exact, up to
``--flat-max``); ``ivf-sq8``, ``ivf-sq6`` and ``ivf-pq`` built through the gallery's own ``FaceIndex``, with
their re-rank on the float vectors (held in memory here, standing in for the database that a
gallery re-ranks from). Figures: bytes per face of the serialised index (cells and codebooks
included), build time (training + adding), recall@1 against exact, with and without the
re-rank, and latency per query in a batch and for one query alone.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.run import face_like_vectors, shown  # noqa: E402
from facesearch.index.spec import COMPRESSED, RERANK  # noqa: E402

DIM = 512


def face_like_memmap(count: int, queries: int, folder: Path, rng: np.random.Generator,
                     per_identity: int = 4, intrinsic: int = 16, chunk: int = 250_000) -> tuple[np.ndarray, np.ndarray]:
    """``face_like_vectors``'s distribution, written chunk by chunk into a file-backed array:
    10M faces are 20 GB of float32, more than this machine's memory (the gallery's database
    holds them on disk too). Returns (gallery, queries: one more photo of the first people)."""
    people = max(1, count // per_identity)
    basis = np.linalg.qr(rng.standard_normal((DIM, intrinsic)))[0].astype(np.float32)
    centres = rng.standard_normal((people, intrinsic)).astype(np.float32)

    def photos(person: np.ndarray) -> np.ndarray:
        x = centres[person] @ basis.T
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        x += rng.standard_normal((len(person), DIM), dtype=np.float32) / np.float32(np.sqrt(DIM))
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    folder.mkdir(parents=True, exist_ok=True)
    gallery = np.lib.format.open_memmap(folder / f"gallery-{count}.npy", mode="w+", dtype=np.float32, shape=(count, DIM))
    for low in range(0, count, chunk):
        gallery[low : low + chunk] = photos(np.arange(low, min(low + chunk, count)) % people)
    gallery.flush()
    return gallery, photos(np.arange(min(queries, people)))


def exact_top1(gallery: np.ndarray, queries: np.ndarray, block: int = 262_144) -> tuple[np.ndarray, float]:
    """(index of each query's nearest vector, seconds): one matrix product per block."""
    start = time.perf_counter()
    best = np.full(len(queries), -np.inf, dtype=np.float32)
    where = np.zeros(len(queries), dtype=np.int64)
    for low in range(0, len(gallery), block):
        scores = queries @ gallery[low : low + block].T
        top = scores.argmax(axis=1)
        value = scores[np.arange(len(queries)), top]
        better = value > best
        best[better], where[better] = value[better], top[better] + low
    return where, time.perf_counter() - start


def stored(gallery: np.ndarray):  # noqa: ANN201
    """The database's role: ids (here positions) -> (ids still stored, their float vectors)."""

    def lookup(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids = np.asarray(ids, dtype=np.int64)
        return ids, gallery[ids]

    return lookup


def latencies(search, queries: np.ndarray, alone: int = 50) -> tuple[float, float]:  # noqa: ANN001
    """(ms per query in one batch of all queries, median ms of one query alone)."""
    start = time.perf_counter()
    search(queries)
    batch = 1000 * (time.perf_counter() - start) / len(queries)
    single = []
    for query in queries[:alone]:
        start = time.perf_counter()
        search(query[None])
        single.append(1000 * (time.perf_counter() - start))
    return round(batch, 3), round(statistics.median(single), 3)


def measure(kind: str, gallery: np.ndarray, queries: np.ndarray, truth: np.ndarray, rng: np.random.Generator,
            nprobes: list[int], reranks: list[int]) -> list[dict[str, Any]]:
    """Rows for one kind: built once, searched at each of ``nprobes`` (IVF kinds) and, for the
    compressed kinds, each of ``reranks`` (candidates scored exactly)."""
    import faiss

    from facesearch.index.faiss_index import FaceIndex
    from facesearch.index.spec import IndexSpec, IndexStamp, ivf_cells, training_size

    size = len(gallery)
    spec = IndexSpec(kind)
    start = time.perf_counter()
    sample = gallery[np.sort(rng.choice(size, training_size(spec, size), replace=False))] if kind != "flat" else None
    index = FaceIndex(DIM, IndexStamp("bench", 0, None, DIM), False, spec, sample, size, stored(gallery))
    for low in range(0, size, 500_000):
        index.add(np.arange(low, min(low + 500_000, size)), gallery[low : low + 500_000])
    build_s = time.perf_counter() - start
    base = {"size": size, "index": kind, "build_s": round(build_s, 1),
            "bytes_per_face": round(len(faiss.serialize_index(index.cpu)) / size, 1)}
    rows = []
    for nprobe in nprobes if kind != "flat" else [None]:
        for rerank in reranks if kind in COMPRESSED else [None]:
            row = dict(base)
            if nprobe is not None:
                index.tune(IndexSpec(kind, nprobe=nprobe, **({"rerank": rerank} if rerank else {})))
                raw = index.cpu.search(queries, 1)[1][:, 0]  # the codes' own ranking, before the re-rank
                row.update(nlist=ivf_cells(size), nprobe=nprobe, recall_at_1_without_rerank=round(float(np.mean(raw == truth)), 4))
            if rerank is not None:
                row["rerank"] = rerank
            row["recall_at_1"] = round(float(np.mean(index.search(queries, 1)[1][:, 0] == truth)), 4)
            row["batch_ms"], row["single_ms"] = latencies(lambda q: index.search(q, 1), queries)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Galleries of millions of faces (benchmarks/scale.py)",
        "",
        f"{result['machine']}; {result['queries']} queries, {DIM}-d face-like vectors; the command of each size's run is in scale.json.",
        "Bytes per face: the serialised index over its faces (cells, codebooks, ids included). Re-rank: the",
        "best candidates (8 per result asked, at least the gallery's `rerank` setting, 64 unless the row says",
        "otherwise) scored exactly on the float vectors.",
        "",
        "| faces | index | nprobe | re-rank | bytes/face | of flat | build s | recall@1 | without re-rank | ms/query in a batch | ms one query |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        flat = 4 * DIM + 8  # a float vector and its id: what flat holds per face
        rerank = _rerank(row) or ""
        lines.append(
            f"| {row['size']:,} | {row['index']} | {row.get('nprobe', '')} | {rerank} | {row['bytes_per_face']:.0f} | {row['bytes_per_face'] / flat:.3f} | "
            f"{row.get('build_s', '')} | {row.get('recall_at_1', '')} | {row.get('recall_at_1_without_rerank', '')} | "
            f"{row['batch_ms']} | {row['single_ms']} |"
        )
    return "\n".join(lines) + "\n"


_KIND_ORDER = {"numpy (exact baseline)": 0, "flat": 1, "ivf-sq8": 2, "ivf-sq6": 3, "ivf-pq": 4}


def _rerank(row: dict[str, Any]) -> int | None:
    """Candidates the row's kind re-ranked (rows of runs before the setting re-ranked the default)."""
    return row.get("rerank", RERANK if row["index"] in COMPRESSED else None)


def _setting(row: dict[str, Any]) -> tuple[Any, ...]:
    """What a row measured: the size, the kind and its search settings."""
    return row["size"], row["index"], row.get("nprobe"), _rerank(row)


def _earlier_rows(path: Path, measured: set[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Rows of an earlier run for the settings not measured now: a 10M run need not redo 1M,
    nor a new kind or setting the others (the vectors are the same: one seed a size, since
    2026-12-06; before, a size listed after another in --sizes drew other vectors)."""
    if not path.exists():
        return []
    return [row for row in json.loads(path.read_text())["rows"] if _setting(row) not in measured]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--flat-max", type=int, default=1_000_000, help="largest size also built as flat")
    parser.add_argument("--kinds", default="ivf-sq8,ivf-pq")
    parser.add_argument("--nprobes", default="64,128,256", help="IVF cells searched per query (64: the gallery default)")
    parser.add_argument("--reranks", default=str(RERANK), help="compressed kinds: candidates re-ranked exactly (64: the default)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/facesearch-scale"),
                        help="where sizes over --flat-max keep their vectors (20 GB at 10M)")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for size in [int(s) for s in args.sizes.split(",")]:
        rng = np.random.default_rng(0)  # each size its own draw, whatever came before it in --sizes
        if size <= args.flat_max:
            gallery, queries = face_like_vectors(size, DIM, 4, rng)
        else:
            gallery, queries = face_like_memmap(size, args.queries, args.scratch, rng)
        queries = np.ascontiguousarray(queries[: args.queries])
        truth, exact_s = exact_top1(gallery, queries)
        numpy_batch, numpy_single = latencies(lambda q: exact_top1(gallery, q)[0], queries[:100], alone=5)
        rows.append({"size": size, "index": "numpy (exact baseline)", "bytes_per_face": 4 * DIM,
                     "batch_ms": round(1000 * exact_s / len(queries), 3), "single_ms": numpy_single})
        kinds = (["flat"] if size <= args.flat_max else []) + args.kinds.split(",")
        for kind in kinds:
            rows.extend(measure(kind, gallery, queries, truth, rng, [int(n) for n in args.nprobes.split(",")],
                                [int(n) for n in args.reranks.split(",")]))
        del gallery
        for leftover in args.scratch.glob(f"gallery-{size}.npy"):
            leftover.unlink()
    command = "python benchmarks/scale.py " + " ".join(sys.argv[1:])
    for row in rows:
        row["command"] = command
    kept = _earlier_rows(args.out / "scale.json", {_setting(row) for row in rows})
    order = lambda r: (r["size"], _KIND_ORDER.get(r["index"], 9), r.get("nprobe") or 0, _rerank(r) or 0)  # noqa: E731
    result = {
        "command": command,
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPUs",
        "queries": args.queries, "rows": sorted(kept + rows, key=order), "out": shown(args.out),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "scale.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
