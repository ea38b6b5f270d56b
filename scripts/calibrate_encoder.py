"""Measure an encoder's calibration on a labelled open-set benchmark, and state it in its file.

The calibration is the threshold at which ``--fpir`` of the probes of people who are not
enrolled get a name, measured by enrolling GALLERY and answering PROBES (the HW2P2 layout:
``verification/known`` and ``verification/unknown_dev`` with its labels). A new gallery of
that encoder starts at it (``threshold_source: encoder``, see facesearch.gallery.calibration):

    python scripts/calibrate_encoder.py facesearch/models/reference.onnx \\
        --gallery ../shared/datasets/cfp-dev/verification/known \\
        --probes ../shared/datasets/cfp-dev/verification/unknown_dev --fpir 0.15 --write

``--write`` puts it in the ONNX sidecar, or in a .pt model file's meta (neither changes the
encoder's fingerprint). Prints what it measured as JSON. Release tooling, not runtime.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from facesearch import UNKNOWN
from facesearch.evaluation.bench import run_open_set
from facesearch.gallery.calibration import threshold_at
from facesearch.gallery.engine import Gallery


def measure(model: Path, gallery_dir: Path, probes: Path, rate: float, detector: str | None = None) -> dict[str, Any]:
    """The threshold at FPIR ``rate`` on ``probes``' strangers, and the figures there."""
    with tempfile.TemporaryDirectory(prefix="facesearch-calibrate-") as home, Gallery(home, detector=detector) as gallery:
        gallery.enroll(gallery_dir, model=model)
        gallery.set_threshold(1.0)  # answers are re-decided below; only the scores matter here
        _, results = run_open_set(gallery, probes)
        strangers = np.array([r.score for r in results if r.label == UNKNOWN])
        threshold = threshold_at(strangers, rate)
        enrolled = [r for r in results if r.label != UNKNOWN]
        right = sum(r.score >= threshold and r.nearest == r.label for r in enrolled) + int(np.sum(strangers < threshold))
        rule, flip = gallery.decision()["scoring"], gallery.encoder().flip
    return {
        "threshold": threshold, "fpir": rate, "scoring": rule, "flip": flip,
        "observed_fpir": float(np.mean(strangers >= threshold)),
        "accuracy": right / len(results), "probes": len(results), "strangers": len(strangers),
        "measured_on": f"{_portable(gallery_dir)} enrolled, {_portable(probes)} answered",
    }


def write(model: Path, calibration: dict[str, Any]) -> None:
    stated = {k: calibration[k] for k in ("threshold", "fpir", "scoring", "flip", "measured_on")}
    if model.suffix == ".onnx":
        sidecar = model.with_name(model.name + ".json")
        body = json.loads(sidecar.read_text())
        body["calibration"] = stated
        sidecar.write_text(json.dumps(body, indent=2) + "\n")
        return
    import torch

    payload = torch.load(model, weights_only=True)
    payload["meta"] = {**payload.get("meta", {}), "calibration": stated}
    torch.save(payload, model)


def _portable(path: Path) -> str:
    relative = os.path.relpath(path.resolve())
    return relative if not relative.startswith("../..") else path.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--gallery", type=Path, required=True)
    parser.add_argument("--probes", type=Path, required=True)
    parser.add_argument("--fpir", type=float, default=0.10)
    parser.add_argument("--detector", help="as enroll's --detector [default: as the encoder says]")
    parser.add_argument("--write", action="store_true", help="state it in the model file (sidecar or meta)")
    args = parser.parse_args()
    calibration = measure(args.model, args.gallery, args.probes, args.fpir, args.detector)
    if args.write:
        write(args.model, calibration)
    print(json.dumps(calibration, indent=2))


if __name__ == "__main__":
    main()
