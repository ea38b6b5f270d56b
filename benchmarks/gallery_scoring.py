"""Gallery scoring rules compared on an enrolled gallery: each person scored by their
nearest enrolled image (what `query` and `bench` do) or by the mean of their embeddings.

    FACESEARCH_HOME=H facesearch enroll ../shared/datasets/cfp-dev/verification/known
    python benchmarks/gallery_scoring.py H ../shared/datasets/cfp-dev/verification/unknown_dev

Both rules score the same probe embeddings (the gallery's encoder) against the same stored
embeddings, with the bench's own figure code, each at its own tuned threshold; the gallery's
threshold is not changed. Prints one JSON object (`facesearch.evaluation.bench.compare_scoring`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("home", type=Path, help="the gallery's home folder (FACESEARCH_HOME)")
    parser.add_argument("probes", type=Path, help="probe folder, labelled as for `facesearch bench`")
    parser.add_argument("--labels", type=Path, help="labels CSV [default: verification_dev.csv beside the probes]")
    args = parser.parse_args()
    from facesearch.evaluation.bench import compare_scoring
    from facesearch.gallery.engine import Gallery

    with Gallery(args.home) as gallery:
        print(json.dumps(compare_scoring(gallery, args.probes, args.labels), indent=2))


if __name__ == "__main__":
    main()
