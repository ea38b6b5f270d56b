"""Does a threshold travel to photos unlike those it was set on? (issue 27)

    python benchmarks/threshold_travel.py [--out benchmarks/results] [--rate 0.05]

cfp-dev's open-set task (``verification/known`` enrolled, ``unknown_dev`` answered, 150 of its
750 probes are strangers) on four kinds of photos, every photo changed the same way, written
to a temporary folder (never into the repository):

- ``as is``: cfp-dev's photos;
- ``grey 48 px``: grey and brought down to 48 px on the short side, then back up to its size
  (FER2013-like: the "grey low-resolution faces" of the issue);
- ``video frames``: down to 64 px, a 5 px motion blur, JPEG quality 25, back up (a face in a
  far, moving video frame);
- ``photos in, frames out``: the gallery as is, the probes video frames (enrolled from good
  photos, asked with a camera's).

For each encoder (the shipped student; SFace when ``../shared/models/sface`` is there) and kind:
the accuracy at the threshold tuned on that very set (with labels: the ceiling); at the
threshold tuned on cfp-dev as is, carried over; and at the label-free ``threshold --fpir RATE``
set from that gallery's own photos, with the observed FPIR (strangers named) and FNIR
(enrolled people not given their name); and at the threshold a new gallery starts from (the
shipped student's stated calibration; for SFace, which states none, the label-free estimate
at FPIR 0.10), with the FPIR that ``facesearch threshold`` estimates for it from the gallery's
own photos, and whether it notes that the photos are unlike the encoder's calibration set.

Writes threshold_travel.json and threshold_travel.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CFP = ROOT.parent / "shared" / "datasets" / "cfp-dev" / "verification"
CFP_NAME = "../shared/datasets/cfp-dev/verification"
SFACE = ROOT.parent / "shared" / "models" / "sface" / "face_recognition_sface_2021dec.onnx"


def _down_up(image: np.ndarray, side: int) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """The image with its short side at ``side`` px, and the way back to its size."""
    height, width = image.shape[:2]
    scale = side / min(height, width)
    small = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
    return small, lambda out: cv2.resize(out, (width, height), interpolation=cv2.INTER_CUBIC)


def grey_48(image: np.ndarray) -> np.ndarray:
    small, back = _down_up(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), 48)
    return cv2.cvtColor(back(small), cv2.COLOR_GRAY2BGR)


def video_frame(image: np.ndarray) -> np.ndarray:
    small, back = _down_up(image, 64)
    kernel = np.zeros((5, 5), np.float32)
    kernel[2, :] = 1 / 5  # a horizontal pan
    blurred = cv2.filter2D(small, -1, kernel)
    _, jpeg = cv2.imencode(".jpg", blurred, [cv2.IMWRITE_JPEG_QUALITY, 25])
    return back(cv2.imdecode(jpeg, cv2.IMREAD_COLOR))


CHANGES: dict[str, Callable[[np.ndarray], np.ndarray]] = {"grey 48 px": grey_48, "video frames": video_frame}


def changed_copy(source: Path, target: Path, change: Callable[[np.ndarray], np.ndarray]) -> Path:
    """Every .jpg below ``source`` changed, at the same place below ``target``; other files copied."""
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        out = target / path.relative_to(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() == ".jpg":
            cv2.imwrite(str(out), change(cv2.imread(str(path), cv2.IMREAD_COLOR)), [cv2.IMWRITE_JPEG_QUALITY, 95])
        else:
            shutil.copy(path, out)
    return target


def at(results: list, threshold: float, enrolled: set[str]) -> dict[str, float]:  # noqa: ANN001 (ProbeResult)
    """Accuracy, FPIR and FNIR of the probes decided at ``threshold``."""
    from facesearch import UNKNOWN
    from facesearch.evaluation.bench import open_set_figures

    decided = [replace(r, prediction=r.nearest if r.score >= threshold else UNKNOWN) for r in results]
    figures = open_set_figures(decided, enrolled)
    return {"threshold": round(threshold, 4), **{k: round(figures[k], 4) for k in ("accuracy", "fpir", "fnir")}}


def measure(model: Path | None, gallery_dir: Path, probes: Path, rate: float, carried: float | None) -> dict[str, Any]:
    """One encoder on one kind of photos: the thresholds and what each decides."""
    from facesearch.evaluation.bench import run_open_set, tune_threshold
    from facesearch.gallery.engine import Gallery

    with tempfile.TemporaryDirectory(prefix="facesearch-travel-") as home, Gallery(Path(home) / "home") as gallery:
        gallery.enroll(gallery_dir, model=model)
        starts = gallery.threshold_report()
        report, results = run_open_set(gallery, probes)
        enrolled = {row["identity"] for row in gallery.identities()}
        estimate = gallery.estimate_threshold(rate)
    tuned, _ = tune_threshold(results)
    row = {
        "no_face": report["no_face"],
        "tuned_here": at(results, tuned, enrolled),
        "label_free": {**at(results, estimate.threshold, enrolled), "estimated_from": estimate.estimated_from},
        "new_gallery": {**at(results, starts["threshold"], enrolled), "source": starts["threshold_source"],
                        "estimated_fpir": starts["estimated_fpir"], "note": "note" in starts},
    }
    if carried is not None:
        row["carried"] = at(results, carried, enrolled)
    return row


def kinds(folder: Path) -> dict[str, tuple[Path, Path]]:
    """(gallery, probes) of each kind of photos, the changed ones written below ``folder``."""
    found = {"as is": (CFP / "known", CFP / "unknown_dev")}
    for name, change in CHANGES.items():
        target = folder / name.replace(" ", "_")
        found[name] = (changed_copy(CFP / "known", target / "known", change),
                       changed_copy(CFP / "unknown_dev", target / "unknown_dev", change))
        shutil.copy(CFP / "verification_dev.csv", target / "verification_dev.csv")  # the labels, beside the probes
    found["photos in, frames out"] = (CFP / "known", found["video frames"][1])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=0.05, help="the label-free threshold's FPIR")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    from facesearch.models.reference import REFERENCE_ONNX

    encoders = {"shipped student": REFERENCE_ONNX}
    if SFACE.exists():
        encoders["SFace"] = SFACE
    results: dict[str, Any] = {"data": CFP_NAME, "rate": args.rate, "rows": []}
    with tempfile.TemporaryDirectory(prefix="facesearch-travel-photos-") as folder:
        photos = kinds(Path(folder))
        for encoder, model in encoders.items():
            carried = None
            for kind, (gallery_dir, probes) in photos.items():
                row = measure(model, gallery_dir, probes, args.rate, carried)
                if carried is None:
                    carried = row["tuned_here"]["threshold"]
                results["rows"].append({"encoder": encoder, "photos": kind, **row})
                print(json.dumps(results["rows"][-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "threshold_travel.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "threshold_travel.md").write_text(markdown(results))
    print(markdown(results))


def markdown(r: dict[str, Any]) -> str:
    def cell(figures: dict[str, Any] | None) -> str:
        if figures is None:
            return "-"
        return f"{figures['threshold']:.3f}: {figures['accuracy']:.3f} ({figures['fpir']:.3f} / {figures['fnir']:.3f})"

    lines = ["# Does a threshold travel? (benchmarks/threshold_travel.py)", "",
             f"`{r['data']}`: known/ enrolled, unknown_dev/ answered (750 probes, 150 strangers), every photo "
             "changed alike. Each cell: threshold: open-set accuracy (FPIR / FNIR), FPIR the strangers given a "
             "name, FNIR the enrolled not given theirs.", "",
             f"| encoder | photos | no face | tuned on this set (labels) | cfp-dev's tuned, carried | "
             f"label-free `--fpir {r['rate']}` | a new gallery's start |",
             "|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        new = row["new_gallery"]
        start = f"{cell(new)} {new['source']}; estimated FPIR {new['estimated_fpir']:.3f}" + (", noted" if new["note"] else "")
        lines.append(f"| {row['encoder']} | {row['photos']} | {row['no_face']} | {cell(row['tuned_here'])} | "
                     f"{cell(row.get('carried'))} | {cell(row['label_free'])} | {start} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
