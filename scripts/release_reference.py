"""Release a trained model file as the shipped reference encoder (release tooling, not runtime).

Writes ``facesearch/models/reference.pt`` (fp16 weights, the training meta kept plus the
credits, the classifier dropped) and its ONNX form beside it, checked against it on photos:

    python scripts/release_reference.py student.pt --check ../shared/datasets/cfp-dev/verification/known \
        --credits "Distilled from SFace (...) on faces of FIW (...), ...; this model inherits those terms."

Prints both fingerprints and the export check as JSON. Needs the ``train`` extra (torch).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from facesearch.errors import ModelError
from facesearch.models.encoder import encoder_from_payload, read_model_file, save_encoder
from facesearch.models.export import export_onnx
from facesearch.models.reference import MAX_BYTES, REFERENCE_FILE


def release(source: str | Path, target: str | Path = REFERENCE_FILE, check: str | Path | None = None,
            **meta: object) -> dict[str, Any]:
    """Write ``source`` as the reference at ``target`` (+ ``.onnx``); returns both fingerprints."""
    target = Path(target)
    payload = read_model_file(source)
    encoder, _ = encoder_from_payload(payload, source, "cpu")
    fp = save_encoder(encoder, target, {**payload["meta"], "exported_from": Path(source).name, **meta}, half=True)
    size = target.stat().st_size
    if size > MAX_BYTES:
        target.unlink()
        raise ModelError(f"{source}: {size / 2**20:.1f} MB in fp16, over the {MAX_BYTES / 2**20:.0f} MB limit")
    exported = export_onnx(target, target.with_suffix(".onnx"), check)
    return {**exported, "fingerprint": fp, "onnx_fingerprint": exported["fingerprint"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a model file from `facesearch train`")
    parser.add_argument("--out", default=str(REFERENCE_FILE), help="where the .pt goes (the .onnx beside it)")
    parser.add_argument("--check", help="a folder of photos the torch and ONNX forms must agree on")
    parser.add_argument("--credits", help="what the model learnt from and the terms it inherits")
    args = parser.parse_args()
    meta = {"credits": args.credits} if args.credits else {}
    print(json.dumps(release(args.model, args.out, args.check, **meta), indent=2))


if __name__ == "__main__":
    main()
