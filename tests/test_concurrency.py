"""Processes sharing one gallery: concurrent enrolls and queries succeed, nothing is lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from facesearch.gallery.engine import Gallery
from facesearch.index.faiss_file import read_index
from facesearch.synthetic import write_dataset
from tests.postgres import PostgresServer


def _enroll_two_overlapping_folders_at_once(tmp_path: Path, homes: tuple[Path, Path]) -> list[Path]:
    """Two enroll processes (one per home) on folders that share 3 people; returns the folders."""
    a, b = tmp_path / "a", tmp_path / "b"
    write_dataset(a, identities=6, images_per_identity=4, seed=21)
    write_dataset(b, identities=6, images_per_identity=4, seed=21, first_identity=3)  # overlaps a
    # one small transaction per batch, so the two writers really interleave
    command = [sys.executable, "-m", "facesearch.cli.main", "enroll", "--json"]
    command += ["--batch-size", "4", "--commit-every", "4"]
    procs = [
        subprocess.Popen([*command, str(src)], env={**os.environ, "FACESEARCH_HOME": str(home)},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for src, home in zip((a, b), homes)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for proc, (out, err) in zip(procs, outs):
        assert proc.returncode == 0, err.decode()
    reports = [json.loads(out) for out, _ in outs]
    unique = len({p.read_bytes() for p in [*a.glob("*/*.jpg"), *b.glob("*/*.jpg")]})
    assert sum(r["enrolled"] for r in reports) == unique == 36
    assert sum(r["skipped"] for r in reports) == 48 - 36
    return [a, b]


def _gallery_holds_both(home: Path, folders: list[Path]) -> None:
    a, b = folders
    with Gallery(home) as g:
        assert g.counts() == (9, 36)
        for path in [a / "person_0000" / "0000.jpg", b / "person_0008" / "0003.jpg"]:
            assert g.query(path).identity == path.parent.name
        assert g.info()["index"]["up_to_date"]
    assert read_index(home / "index.faiss").ntotal == 36


def test_two_enrolls_at_once(tmp_path: Path, home: Path, database: str) -> None:
    _gallery_holds_both(home, _enroll_two_overlapping_folders_at_once(tmp_path, (home, home)))


def test_two_homes_enrolling_into_one_postgres_database(tmp_path: Path, postgres_server: PostgresServer,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two machines sharing one PostgreSQL gallery (each with its own home: index, lock): no
    home lock between them, so the database's row lock alone must keep the same new person and
    the same photo from being inserted twice; each home's index then catches up on open."""
    monkeypatch.setenv("FACESEARCH_DATABASE_URL", postgres_server.url())
    homes = (tmp_path / "machine-1", tmp_path / "machine-2")
    folders = _enroll_two_overlapping_folders_at_once(tmp_path, homes)
    for home in homes:
        _gallery_holds_both(home, folders)


QUERY_LOOP = """
import json, os, sys, time
from facesearch.gallery.engine import Gallery
from facesearch.errors import GalleryError
home, probe, stop = sys.argv[1], sys.argv[2], sys.argv[3]
answered, errors, end = 0, [], time.monotonic() + 300  # a bound, whatever the machine's load
while time.monotonic() < end and not (answered and os.path.exists(stop)):
    try:
        with Gallery(home) as gallery:
            gallery.query(probe)
        answered += 1
    except GalleryError as exc:
        if "empty" not in str(exc):  # before the first enroll commits, "empty" is the answer
            errors.append(str(exc))
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
print(json.dumps({"answered": answered, "errors": errors}))
"""


def test_four_enrollers_and_four_queriers_on_one_home(tmp_path: Path) -> None:
    """While 4 enrolls run (and until each querier has answered): every enroll succeeds, the final count is what was enrolled, every
    query answers, and no "database is locked" (or any other error) reaches a user."""
    folders = []
    for n in range(4):
        folder = tmp_path / f"src{n}"
        write_dataset(folder, identities=3, images_per_identity=3, seed=40 + n, first_identity=3 * n)
        folders.append(folder)
    home = tmp_path / "home"
    env = {**os.environ, "FACESEARCH_HOME": str(home)}
    probe = folders[0] / "person_0000" / "0000.jpg"
    enroll = [sys.executable, "-m", "facesearch.cli.main", "enroll", "--json", "--batch-size", "2", "--commit-every", "2"]
    enrollers = [subprocess.Popen([*enroll, str(f)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for f in folders]
    stop = tmp_path / "enrolled"  # queriers go on until the enrolls are done and they have answered
    queriers = [subprocess.Popen([sys.executable, "-c", QUERY_LOOP, str(home), str(probe), str(stop)], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(4)]
    for process in enrollers:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0 and "locked" not in err.decode(), err.decode()[-500:]
    stop.touch()
    answers = []
    for process in queriers:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err.decode()[-500:]
        answers.append(json.loads(out))
    assert all(a["errors"] == [] for a in answers), answers
    assert sum(a["answered"] for a in answers) > 0
    with Gallery(home) as gallery:
        assert gallery.counts() == (12, 36)
        assert gallery.query(probe).identity == "person_0000"
