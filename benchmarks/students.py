"""Student networks for the answering budget (issue 27): each candidate backbone with the
shipped student's head (128-d GDC, 112 px), exported to ONNX as galleries run it, timed at
batch 1 through onnxruntime (what one query face costs), with its parameter count and how
many faces a second it trains on in torch (forward and backward at the training loop's
batch of 128, channels-last as the loop runs it: what sets its epochs at equal training time); the shipped student's network first, as the baseline of the
same run.

    python benchmarks/students.py [--backbones mobilenet_v3_small,litface,...] [--runs 300]

Random weights: the time does not depend on them. Writes students.json and students.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BACKBONES = "mobilenet_v3_small,litface,litface_relu,mobilenet_v3_large,mobilenet_v2,resnet18"
TRAIN_BATCH, TRAIN_STEPS = 128, 4


def measure(backbone: str, runs: int, folder: Path) -> dict:
    from facesearch.embedding.onnx_runtime import OnnxEncoder
    from facesearch.models import EncoderConfig, build_encoder, save_encoder
    from facesearch.models.export import export_onnx

    encoder = build_encoder(EncoderConfig(backbone=backbone, embedding_dim=128, head="gdc"), "cpu")
    params = sum(p.numel() for p in encoder.parameters())
    model = folder / f"{backbone}.pt"
    save_encoder(encoder, model)
    export_onnx(model, folder / f"{backbone}.onnx")
    onnx = OnnxEncoder(folder / f"{backbone}.onnx", runtime="onnxruntime")
    face = np.random.default_rng(0).integers(0, 256, (1, 3, 112, 112), dtype=np.uint8)
    for _ in range(20):
        onnx.embed_faces(face)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        onnx.embed_faces(face)
        times.append(time.perf_counter() - start)
    return {"backbone": backbone, "params_m": round(params / 1e6, 2), "batch1_ms": round(1000 * statistics.median(times), 3),
            "train_faces_per_s": round(training_rate(encoder), 1)}


def training_rate(encoder) -> float:  # noqa: ANN001 (a facesearch Encoder)
    """Faces a second through a forward and backward pass (SGD step included), after a warm-up step."""
    import torch

    encoder.train()
    encoder.to(memory_format=torch.channels_last)
    optimiser = torch.optim.SGD(encoder.parameters(), lr=0.0)
    faces = torch.randn(TRAIN_BATCH, 3, 112, 112).contiguous(memory_format=torch.channels_last)
    start = 0.0
    for step in range(TRAIN_STEPS + 1):
        if step == 1:
            start = time.perf_counter()
        optimiser.zero_grad()
        encoder(faces).square().mean().backward()
        optimiser.step()
    return TRAIN_BATCH * TRAIN_STEPS / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default=BACKBONES)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        rows = [measure(b, args.runs, Path(folder)) for b in args.backbones.split(",")]
    base = rows[0]["batch1_ms"]
    for row in rows:
        row["x_shipped"] = round(row["batch1_ms"] / base, 2)
    lines = ["# Student networks at batch 1 (benchmarks/students.py)", "",
             "128-d GDC head, 112 px, ONNX through onnxruntime, median of the runs; the first row is the shipped student's network.", "",
             "| backbone | parameters (M) | one face, ms | x shipped | trains on, faces/s |", "|---|---|---|---|---|"]
    lines += [f"| {r['backbone']} | {r['params_m']} | {r['batch1_ms']} | {r['x_shipped']} | {r['train_faces_per_s']} |"
              for r in rows]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "students.json").write_text(json.dumps(rows, indent=2) + "\n")
    (args.out / "students.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
