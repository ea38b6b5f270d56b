"""`verify A B` against `bench --pairs`: the same score on every pair? On cfp-dev's frontal
(pairs.txt) and frontal-profile (pairs_profile.txt) pairs with the shipped encoder: each pair
through ``Gallery.verify`` (what `facesearch verify` and `POST /v1/verify` run: each photo's
largest face), beside the score `bench --pairs` computes for it (its batched embeddings).

    python benchmarks/verify_pairs.py [--model M] [--out benchmarks/results]

Writes verify_pairs.json: per file, the pairs compared, the largest difference, and the pairs
`verify` refused (a photo with no face found: `verify` says so, where `bench` answers from
the whole photo so that every pair is scored).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CFP = ROOT.parent / "shared" / "datasets" / "cfp-dev"


def compare(pairs_file: Path, model: Path | None) -> dict[str, Any]:
    from facesearch.embedding.encoders import load_model
    from facesearch.embedding.face_finding.prepare import preparer_for
    from facesearch.errors import ImageError
    from facesearch.evaluation.verification import pair_vectors, read_pairs
    from facesearch.gallery.engine import Gallery
    from facesearch.models.reference import default_model

    model = model or Path(default_model())
    encoder, _ = load_model(model, "cpu")
    pairs = read_pairs(pairs_file, CFP / "images")
    vectors, no_face = pair_vectors(encoder, pairs, preparer_for(encoder.preprocessing, fallback=True))
    expected = pairs.scores(vectors)
    differences, refused = [], []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as home, Gallery(home) as gallery:
        for left, right, score in zip(pairs.left, pairs.right, expected):
            try:
                verdict = gallery.verify(pairs.images[left], pairs.images[right], model)
            except ImageError as exc:
                refused.append(exc.path)
                continue
            differences.append(abs(verdict.score - float(score)))
    return {"pairs_file": pairs_file.name, "model": model.name, "pairs": len(expected), "compared": len(differences),
            "max_abs_difference": float(np.max(differences)), "refused_no_face": len(refused),
            "photos_without_face_in_bench": int(no_face), "seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    if not CFP.exists():
        raise SystemExit("needs ../shared/datasets/cfp-dev")
    rows = [compare(CFP / name, args.model) for name in ("pairs.txt", "pairs_profile.txt")]
    for row in rows:
        print(json.dumps(row))
    (Path(args.out) / "verify_pairs.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
