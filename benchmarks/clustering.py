"""Grouping unnamed faces into people on cfp-dev (all 3,481 photos, frontal and profile; names
hidden from the methods, used only to score them): BCubed and pairwise F of each method of
facesearch.people.clustering at several thresholds, beside scikit-learn's DBSCAN with immich's
settings on the same embeddings, and the time each took.

    python benchmarks/clustering.py [--model M ...] [--out benchmarks/results]

The embeddings (MTCNN + the encoder's alignment, the largest face of each photo, the whole
photo when none is found) are cfp_faces.py's, cached by model fingerprint.
Writes clustering.json and clustering.md. The thresholds are chosen on cfp-dev itself, which
flatters the best row there; the sweep shows how much the choice matters.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from cfp_faces import ROOT, SFACE, frontal_of, largest_faces, people_of
THRESHOLDS = {"linkage": (0.15, 0.2, 0.25, 0.3, 0.4), "density": (0.4, 0.45, 0.5, 0.55)}


def embeddings(model: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vectors, person of each, frontal or not) of every cfp-dev photo."""
    files, vectors, _ = largest_faces(model)
    return vectors, people_of(files), frontal_of(files)


INCREMENTAL = 0.2  # the linkage threshold the incremental row uses


def incremental(name: str, vectors: np.ndarray, people: np.ndarray) -> dict[str, Any]:
    """The photos in two halves (a seeded random split): grouped after the first, then the
    second added to those groups (``extend``), as `cluster` after each of two enrolls."""
    from facesearch.evaluation.clustering import report
    from facesearch.people.clustering import extend, group

    first = np.random.default_rng(0).permutation(len(vectors)) < len(vectors) // 2
    order = np.concatenate([np.flatnonzero(first), np.flatnonzero(~first)])
    start = time.perf_counter()
    old = group(vectors[first], "linkage", INCREMENTAL)
    labels = extend(vectors[order], old, INCREMENTAL)
    return {"model": name, "method": "linkage (kNN 16, 2 faces), in two halves", "threshold": INCREMENTAL,
            "seconds": round(time.perf_counter() - start, 2), **report(labels, people[order])}


def rows_for(name: str, vectors: np.ndarray, people: np.ndarray) -> list[dict[str, Any]]:
    from facesearch.evaluation.clustering import report
    from facesearch.people.clustering import dbscan_baseline, group

    rows = []
    start = time.perf_counter()
    labels = dbscan_baseline(vectors)
    rows.append({"model": name, "method": "sklearn DBSCAN (immich: cosine 0.5, 3 faces)", "threshold": 0.5,
                 "seconds": round(time.perf_counter() - start, 2), **report(labels, people)})
    for method, min_faces in (("linkage", 2), ("density", 3)):
        for threshold in THRESHOLDS[method]:
            start = time.perf_counter()
            labels = group(vectors, method, threshold, min_faces)
            rows.append({"model": name, "method": f"{method} (kNN 16, {min_faces} faces)", "threshold": threshold,
                         "seconds": round(time.perf_counter() - start, 2), **report(labels, people)})
    rows.append(incremental(name, vectors, people))
    return rows


def at_scale(size: int) -> dict[str, Any]:
    """Time and peak memory of grouping ``size`` face-like vectors (benchmarks/run.py's:
    4 photos a person, 512-d), linkage at the incremental row's threshold."""
    import resource

    from benchmarks.run import face_like_vectors
    from facesearch.evaluation.clustering import report
    from facesearch.people.clustering import knn_graph, group

    gallery, _ = face_like_vectors(size, 512, 4, np.random.default_rng(0))
    truth = np.arange(size) % max(1, size // 4)  # face_like_vectors: photo i is person i mod people
    start = time.perf_counter()
    knn_graph(gallery, 16)
    graph_s = time.perf_counter() - start
    labels = group(gallery, "linkage", INCREMENTAL)
    total = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    figures = report(labels, truth)
    return {"faces": size, "seconds": round(total - graph_s, 1), "knn_seconds": round(graph_s, 1),
            "peak_rss_gib": round(peak, 2), "groups": figures["groups"], "bcubed_f": round(figures["bcubed"]["f"], 4)}


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["# Grouping unnamed faces (benchmarks/clustering.py)", "",
             "cfp-dev, names hidden: BCubed and pairwise precision / recall / F; ungrouped faces count as groups of one.", "",
             "| model | photos | method | threshold | groups | ungrouped | BCubed P | BCubed R | BCubed F | pairwise F | s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        b = r["bcubed"]
        lines.append(f"| {r['model']} | {r['photos']} | {r['method']} | {r['threshold']} | {r['groups']} | {r['ungrouped']} | "
                     f"{b['precision']:.4f} | {b['recall']:.4f} | **{b['f']:.4f}** | {r['pairwise']['f']:.4f} | {r['seconds']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--scale", type=int, help="instead: time grouping this many face-like vectors")
    args = parser.parse_args()
    if args.scale:
        print(json.dumps(at_scale(args.scale)))
        return
    models = args.model or [SFACE, ROOT / "facesearch" / "models" / "reference.onnx"]
    rows = []
    for model in models:
        vectors, people, frontal = embeddings(model)
        for photos, chosen in (("all", np.ones(len(people), bool)), ("frontal", frontal)):
            for row in rows_for(model.name, vectors[chosen], people[chosen]):
                rows.append({**row, "photos": f"{photos} ({int(chosen.sum())})"})
                print(json.dumps(rows[-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "clustering.json").write_text(json.dumps(rows, indent=2) + "\n")
    (args.out / "clustering.md").write_text(markdown(rows))
    print(markdown(rows))


if __name__ == "__main__":
    main()
