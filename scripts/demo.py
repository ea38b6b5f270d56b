"""`make demo`: the main job on the embedded defaults (SQLite, FAISS on CPU), on a fresh clone
with nothing but the install: train an encoder, export it, enroll people it never saw,
benchmark, query, remove someone; every answer it prints is checked against the truth, and
its last line says how many were right.

    python scripts/demo.py [--data demo-data] [--home demo-home]

Why cartoon faces and a trained encoder: a fresh clone has no face photos (none may be
committed), and the shipped encoder, which learnt real faces, finds and names few of the
drawn faces of `facesearch synth` (docs/model-card.md). So this demo trains its own encoder
on 200 cartoon people (about five minutes on two cores), and enrolls 20 others photographed
alike (`--variation 0.5`: even light, facing the camera), as an ID-photo gallery is. It also
benchmarks probes as varied as its training photos, to show where such a small encoder stops.
Every command is printed as a user would type it; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from facesearch import UNKNOWN
from facesearch.evaluation.hw2p2 import labelled_probes


class Demo:
    """Runs facesearch commands as a user would, and keeps the score of its answers."""

    def __init__(self, home: Path, data: Path) -> None:
        self.home, self.data = home, data
        self.env = {**os.environ, "FACESEARCH_HOME": str(home)}
        self.right = self.answers = 0
        self.start = time.monotonic()

    def step(self, title: str) -> None:
        print(f"\n== {title}  [{time.monotonic() - self.start:.0f} s]", flush=True)

    def run(self, *args: object, quiet: bool = False) -> dict:
        """``facesearch ARGS --json``: printed, run, its JSON returned (a failure stops the demo)."""
        words = [str(a) for a in args]
        print("$ facesearch " + " ".join(words), flush=True)
        done = subprocess.run([sys.executable, "-m", "facesearch.cli.main", *words, "--json"], env=self.env,
                              stdout=subprocess.PIPE, stderr=None if not quiet else subprocess.DEVNULL, text=True)
        if done.returncode != 0:
            raise SystemExit(f"demo: `facesearch {' '.join(words)}` failed (exit {done.returncode}): {done.stdout.strip()}")
        return json.loads(done.stdout)

    def answer(self, said: str, truth: str, what: str) -> None:
        """One answer printed with whether it is right."""
        self.answers += 1
        right = said == truth
        self.right += right
        print(f"   {what}: {said}  {'right' if right else f'WRONG (it is {truth})'}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("demo-data"))
    parser.add_argument("--home", type=Path, default=Path("demo-home"))
    args = parser.parse_args()
    for folder in (args.data, args.home):
        shutil.rmtree(folder, ignore_errors=True)
    d, demo = args.data, Demo(args.home, args.data)

    demo.step("1. Cartoon faces to learn from: 200 people, 10 photos each (and 30 more people for validation)")
    demo.run("synth", d / "train", "--identities", 200, "--images", 10)
    demo.run("synth", d / "unseen", "--identities", 30, "--images", 4, "--first-identity", 1000, "--pairs", 10)

    demo.step("2. Train an encoder: classification, then an ArcFace margin (about five minutes on two cores)")
    trained = demo.run("train", d / "train", "--out", d / "encoder.pt", "--epochs", 10, "--arcface-epochs", 5,
                       "--batch-size", 64, "--optimizer", "adamw", "--lr", 0.003, "--weight-decay", 0.05,
                       "--val-pairs", d / "unseen" / "pairs.txt", "--val-images", d / "unseen" / "images")
    print(f"   on 30 people it never saw: pairs ROC-AUC {trained['validation']['roc_auc']:.3f}, "
          f"10-fold accuracy {trained['validation']['pairs_accuracy']:.3f}")
    demo.run("export", d / "encoder.pt", "--onnx", d / "encoder.onnx")
    print("   exported to ONNX: enroll and query run it on onnxruntime, without torch")

    demo.step("3. Enroll 20 other people, 3 photos each, taken alike (even light, facing the camera)")
    demo.run("synth", d / "gallery", "--identities", 20, "--images", 3, "--first-identity", 2000, "--variation", 0.5)
    enrolled = demo.run("enroll", d / "gallery", "--model", d / "encoder.onnx")
    print(f"   enrolled {enrolled['faces']} faces of {enrolled['identities']} people")

    demo.step("4. Benchmark: 20 enrolled people and 10 strangers, 2 photos each; tune the threshold on them")
    demo.run("synth", d / "dev", "--identities", 30, "--probes", 20, "--images", 2, "--first-identity", 2000,
             "--first-image", 3, "--variation", 0.5)
    bench = demo.run("bench", d / "dev" / "unknown_dev", "--tune")
    print(f"   open-set accuracy {bench['accuracy_at_tuned']:.3f} at the tuned threshold {bench['tuned_threshold']:.3f} "
          f"(ROC-AUC {bench['roc_auc']:.3f}, rank-1 {bench['rank1']:.3f})")
    demo.run("synth", d / "varied", "--identities", 30, "--probes", 20, "--images", 2, "--first-identity", 2000,
             "--first-image", 3)
    varied = demo.run("bench", d / "varied" / "unknown_dev")
    print(f"   the same people in photos as varied as the training ones: accuracy {varied['accuracy']:.3f}, "
          f"ROC-AUC {varied['roc_auc']:.3f}: a small encoder trained in minutes on 2,000 photos stops there "
          "(the shipped one, on real faces: docs/model-card.md)")

    demo.step("5. Who is it? A new photo of each of the 20 enrolled people and of 10 strangers, never used to tune")
    demo.run("synth", d / "test", "--identities", 30, "--probes", 20, "--images", 1, "--first-identity", 2000,
             "--first-image", 5, "--variation", 0.5)
    _, labelled = labelled_probes(d / "test" / "unknown_dev", None)  # verification_dev.csv, as bench reads it
    truth = {path.name: label for path, label in labelled.items()}
    for name in sorted(truth):
        result = demo.run("query", d / "test" / "unknown_dev" / name, "--top-k", 1)
        demo.answer(result["identity"], truth[name], f"{name} ({result['score']:.3f} against {result['threshold']:.3f})")

    demo.step("6. Remove a person: their photo is answered n000000 from now on")
    removed = demo.run("remove", truth["000003.jpg"])
    print(f"   removed {removed['removed']} ({removed['faces']} faces)")
    result = demo.run("query", d / "test" / "unknown_dev" / "000003.jpg", "--top-k", 1)
    demo.answer(result["identity"], UNKNOWN, "000003.jpg")

    info = demo.run("info")
    print(f"   gallery: {info['identities']} people, {info['faces']} faces, threshold {info['threshold']:.3f} "
          f"({info['threshold_source']}), index {info['index']['kind']}")
    print(f"\n(took {time.monotonic() - demo.start:.0f} s; the gallery is in {args.home}/, the data in {args.data}/)")
    print(f"demo: {demo.right} of {demo.answers} answers right")
    return 0 if demo.right == demo.answers else 1


if __name__ == "__main__":
    sys.exit(main())
