"""Does the face quality score (facesearch.embedding.quality) say which faces to trust? On
cfp-dev (all 3,481 photos through MTCNN and each encoder's alignment, the largest face of
each): the score's spread on frontal and profile photos; pairs ROC-AUC of cfp-dev's frontal
and frontal-profile pairs, by the lower quality of the pair's two faces (terciles); and the
grouping of unnamed faces (``cluster``'s linkage at its default threshold, in one pass and in
two halves as after two enrolls) with the quality gate at 0, 0.03, 0.05 (``cluster``'s
default), 0.1 and 0.2, faces below it counted as ungrouped.

    python benchmarks/quality.py [--model M ...] [--out benchmarks/results]

Writes quality.json and quality.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from cfp_faces import CFP, ROOT, SFACE, frontal_of, largest_faces, people_of
GATES = (0.0, 0.03, 0.05, 0.1, 0.2)


def spread(quality: np.ndarray, frontal: np.ndarray) -> dict[str, Any]:
    """Quartiles of the score on frontal and on profile photos, and the share under each gate."""
    out: dict[str, Any] = {}
    for name, chosen in (("frontal", frontal), ("profile", ~frontal)):
        q = quality[chosen]
        out[name] = {"photos": int(chosen.sum()), "quartiles": [round(float(v), 3) for v in np.percentile(q, [25, 50, 75])],
                     **{f"under_{gate}": round(float((q < gate).mean()), 4) for gate in GATES if gate}}
    return out


def pairs_by_quality(files: list[Path], vectors: np.ndarray, quality: np.ndarray) -> list[dict[str, Any]]:
    """ROC-AUC of each pairs file in terciles of the pair's lower quality."""
    from sklearn.metrics import roc_auc_score

    from facesearch.evaluation.verification import read_pairs

    position = {path: n for n, path in enumerate(files)}
    rows = []
    for name in ("pairs.txt", "pairs_profile.txt"):
        pairs = read_pairs(CFP / name, CFP / "images")
        index = np.array([position[p] for p in pairs.images])
        left, right = index[pairs.left], index[pairs.right]
        scores = np.einsum("ij,ij->i", vectors[left], vectors[right])
        lower = np.minimum(quality[left], quality[right])
        for tercile, chosen in enumerate(np.array_split(np.argsort(lower, kind="stable"), 3)):
            rows.append({"pairs": name, "tercile": ["lowest", "middle", "highest"][tercile],
                         "quality": f"{lower[chosen].min():.3f}-{lower[chosen].max():.3f}", "count": len(chosen),
                         "roc_auc": round(float(roc_auc_score(pairs.same[chosen], scores[chosen])), 4)})
        rows.append({"pairs": name, "tercile": "all", "quality": "", "count": len(scores),
                     "roc_auc": round(float(roc_auc_score(pairs.same, scores)), 4)})
    return rows


def in_two_halves(vectors: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Group labels as `cluster` gives them after each of two enrolls (the photos split in
    two halves, seeded as benchmarks/clustering.py splits them), gated faces -1."""
    from facesearch.gallery.people import GROUPING_THRESHOLD
    from facesearch.people.clustering import extend, group

    first = np.random.default_rng(0).permutation(len(vectors)) < len(vectors) // 2
    order = np.concatenate([np.flatnonzero(first & kept), np.flatnonzero(~first & kept)])
    old = group(vectors[first & kept], "linkage", GROUPING_THRESHOLD)
    labels = np.full(len(vectors), -1, np.int64)
    labels[order] = extend(vectors[order], old, GROUPING_THRESHOLD)
    return labels


def gated_grouping(vectors: np.ndarray, quality: np.ndarray, people: np.ndarray) -> list[dict[str, Any]]:
    """BCubed of ``cluster``'s grouping with each quality gate (gated faces: groups of one),
    in one pass and in two halves (incremental)."""
    from facesearch.evaluation.clustering import report
    from facesearch.gallery.people import GROUPING_THRESHOLD
    from facesearch.people.clustering import group

    rows = []
    for gate in GATES:
        kept = quality >= gate
        labels = np.full(len(vectors), -1, np.int64)
        labels[kept] = group(vectors[kept], "linkage", GROUPING_THRESHOLD)
        scored, halves = report(labels, people), report(in_two_halves(vectors, kept), people)
        rows.append({"gate": gate, "gated": int((~kept).sum()), "bcubed_f": scored["bcubed"]["f"],
                     "bcubed_precision": scored["bcubed"]["precision"], "bcubed_recall": scored["bcubed"]["recall"],
                     "bcubed_f_two_halves": halves["bcubed"]["f"]})
    return rows


def markdown(results: list[dict[str, Any]]) -> str:
    lines = ["# Face quality against accuracy (benchmarks/quality.py)", "",
             "cfp-dev, all 3,481 photos, MTCNN; quality = geometric mean of size, sharpness and pose "
             "(facesearch/embedding/quality.py).", ""]
    for result in results:
        lines += [f"## {result['model']}", "", "| photos | count | quality quartiles | " + " | ".join(f"under {g}" for g in GATES if g) + " |", "|---|---|---|" + "---|" * (len(GATES) - 1)]
        for name, row in result["spread"].items():
            lines.append(f"| {name} | {row['photos']} | {row['quartiles']} | " + " | ".join(str(row[f"under_{g}"]) for g in GATES if g) + " |")
        lines += ["", "| pairs | lower quality of the pair | range | pairs | ROC-AUC |", "|---|---|---|---|---|"]
        lines += [f"| {r['pairs']} | {r['tercile']} | {r['quality']} | {r['count']} | {r['roc_auc']} |" for r in result["pairs"]]
        lines += ["", "| quality gate | faces gated | BCubed P | BCubed R | BCubed F | BCubed F, in two halves |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['gate']} | {r['gated']} | {r['bcubed_precision']:.4f} | {r['bcubed_recall']:.4f} | **{r['bcubed_f']:.4f}** | {r['bcubed_f_two_halves']:.4f} |"
                  for r in result["grouping"]]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="encoders to measure [default: SFace and the shipped one]")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    if not CFP.exists():
        raise SystemExit("needs ../shared/datasets/cfp-dev")
    from facesearch.models.reference import default_model

    models = [Path(m) for m in args.model] if args.model else [m for m in (SFACE, Path(default_model())) if m.exists()]
    results = []
    for model in models:
        files, vectors, quality = largest_faces(model)
        results.append({"model": model.name, "spread": spread(quality, frontal_of(files)),
                        "pairs": pairs_by_quality(files, vectors, quality),
                        "grouping": gated_grouping(vectors, quality, people_of(files))})
        print(markdown(results[-1:]), flush=True)
    out = Path(args.out)
    (out / "quality.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "quality.md").write_text(markdown(results))


if __name__ == "__main__":
    main()
