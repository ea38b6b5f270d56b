"""Two processes enrolling into one gallery at once: both succeed, nothing is lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from facesearch.engine import Gallery
from facesearch.index import FaceIndex
from facesearch.synthetic import write_dataset


def test_two_enrolls_at_once(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_dataset(a, identities=6, images_per_identity=4, seed=21)
    write_dataset(b, identities=6, images_per_identity=4, seed=21, first_identity=3)  # overlaps a
    home = tmp_path / "home"
    env = {**os.environ, "FACESEARCH_HOME": str(home)}
    # one small transaction per batch, so the two writers really interleave
    command = [sys.executable, "-m", "facesearch.cli.main", "enroll", "--json"]
    command += ["--batch-size", "4", "--commit-every", "4"]
    procs = [
        subprocess.Popen([*command, str(src)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for src in (a, b)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for proc, (out, err) in zip(procs, outs):
        assert proc.returncode == 0, err.decode()
    reports = [json.loads(out) for out, _ in outs]
    unique = len({p.read_bytes() for p in [*a.glob("*/*.jpg"), *b.glob("*/*.jpg")]})
    assert sum(r["enrolled"] for r in reports) == unique == 36
    assert sum(r["skipped"] for r in reports) == 48 - 36
    with Gallery(home) as g:
        assert g.store.counts() == (9, 36)
        assert g.info()["index"]["up_to_date"]
        assert FaceIndex.load(home / "index.faiss").ntotal == 36
        for path in [a / "person_0000" / "0000.jpg", b / "person_0008" / "0003.jpg"]:
            assert g.query(path).identity == path.parent.name
