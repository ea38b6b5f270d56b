"""The floor baseline: PCA on grey pixels, written as a facesearch model file, so that the
very same `facesearch bench` commands measure it as they measure a trained encoder.

    python benchmarks/pca_baseline.py ../shared/datasets/fiw/train --out pca.pt [--dim 128]

The encoder is the ``grey_pixels`` backbone (luminance, averaged down to 56x56) and the
``linear`` head holding the projection: weights = the top ``dim`` principal components of
the training faces, bias = -components @ mean, so an embedding is the centred face's PCA
coordinates (whitened with ``--whiten``), L2-normalised by the gallery as usual.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="training faces: DATA/<identity>/<images>")
    parser.add_argument("--out", type=Path, required=True, help="model file to write")
    parser.add_argument("--dim", type=int, default=128, help="principal components kept")
    parser.add_argument("--whiten", action="store_true", help="divide each component by its standard deviation")
    args = parser.parse_args()
    from facesearch.evaluation.baselines import fit_pca_encoder
    from facesearch.models import save_encoder

    encoder, count = fit_pca_encoder(args.data, args.dim, args.whiten)
    meta = {"baseline": "pca_grey_pixels", "trained_on": str(args.data.resolve()), "images": count,
            "whiten": args.whiten}
    print(save_encoder(encoder, args.out, meta), count)


if __name__ == "__main__":
    main()
