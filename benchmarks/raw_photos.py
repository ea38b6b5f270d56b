"""Accuracy on raw photos: cfp-dev's open-set task with every photo (gallery and probes)
pasted into a 640x480 frame, answered with and without face detection.

    python benchmarks/raw_photos.py [--out benchmarks/results]

It shows what detection is worth when photos are not face crops, for the shipped reference
encoder (a ``crop`` encoder: with a detector, each face's box is cropped) and for SFace
(``arcface-5pt``, when ../shared/models/sface is present). The framed photos are written to a
temporary folder and deleted; the figures go to ``raw_photos.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from photos import CFP_KNOWN, SFACE, YUNET, compose

ROOT = Path(__file__).resolve().parents[1]
PROBES = CFP_KNOWN.parent / "unknown_dev"


def framed(source: Path, target: Path, seed: int) -> Path:
    """Every photo below ``source`` in a 640x480 frame, same relative names."""
    rng = np.random.default_rng(seed)
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        out = (target / path.relative_to(source)).with_suffix(".jpg")
        out.parent.mkdir(parents=True, exist_ok=True)
        compose([path], 640, 480, rng).save(out, quality=90)
    return target


def open_set(known: Path, probes: Path, labels: Path, model: Path | None, detector: str | None) -> dict[str, Any]:
    from facesearch.evaluation.bench import run_open_set
    from facesearch.gallery.engine import Gallery

    with tempfile.TemporaryDirectory() as home, Gallery(home, detector=detector) as gallery:
        start = time.perf_counter()
        report = gallery.enroll(known, model=model)
        result, _ = run_open_set(gallery, probes, labels, tune=True)
        seconds = time.perf_counter() - start
    return {
        "enrolled": report.enrolled, "enroll_failed": len(report.failed),
        "accuracy_at_tuned": round(result["accuracy_at_tuned"], 4), "tuned_threshold": round(result["tuned_threshold"], 3),
        "rank1": round(result["rank1"], 4), "roc_auc": round(result["roc_auc"], 4),
        "no_face": result["no_face"], "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    labels = CFP_KNOWN.parent / "verification_dev.csv"
    runs = [("reference", None, "tight crops (as published)", None, False),
            ("reference", None, "640x480 frames", "none", True),
            ("reference", None, "640x480 frames", "mtcnn", True)]
    if SFACE.exists() and YUNET.exists():
        runs += [("SFace", SFACE, "640x480 frames", "none", True),
                 ("SFace", SFACE, "640x480 frames", f"yunet:{YUNET}", True)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        known = framed(CFP_KNOWN, Path(tmp) / "known", 1)
        probes = framed(PROBES, Path(tmp) / "unknown_dev", 2)
        for name, model, photos, detector, frames in runs:
            figures = open_set(known if frames else CFP_KNOWN, probes if frames else PROBES, labels, model, detector)
            shown = "yunet" if detector and detector.startswith("yunet") else (detector or "as the model says (none)")
            rows.append({"encoder": name, "photos": photos, "detector": shown, **figures})
            print(rows[-1], flush=True)
    results = {"date": time.strftime("%Y-%m-%d %H:%M"), "task": "cfp-dev open-set (750 probes, 600 gallery photos)", "rows": rows}
    out = Path(args.out)
    (out / "raw_photos.json").write_text(json.dumps(results, indent=2) + "\n")
    columns = list(rows[0])
    lines = [f"# Raw photos: cfp-dev open-set ({results['date']})", "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows]
    (out / "raw_photos.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
