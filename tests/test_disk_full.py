"""Disk full: enroll into a home on a tmpfs of a few MB (skipped where mounting is not
allowed). A clear error, the gallery intact, and the same enroll succeeds once space is freed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from facesearch.synthetic import write_dataset
from tests.conftest import cli, cli_json


@pytest.fixture
def small_disk(tmp_path: Path):  # noqa: ANN201
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.decode().strip() or done.returncode})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(folder: Path, leave: int) -> Path:
    """A file that takes all but ``leave`` bytes of the filesystem."""
    stats = os.statvfs(folder)
    filler = folder / "filler"
    filler.write_bytes(b"\0" * max(0, stats.f_bavail * stats.f_frsize - leave))
    return filler


@pytest.mark.parametrize("leave", [64 * 1024, 1024 * 1024], ids=["database full", "model copy full"])
def test_a_full_disk_is_a_clear_error_and_loses_nothing(small_disk: Path, tmp_path: Path, leave: int) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    write_dataset(first, identities=3, images_per_identity=2, seed=50)
    write_dataset(second, identities=40, images_per_identity=6, seed=51, first_identity=10)
    home = small_disk / "home"
    if leave < 1024 * 1024:  # a gallery with its model copy exists, then the database runs out
        cli_json("enroll", first, "--home", home)
    filler = fill(small_disk, leave)
    failed = cli("enroll", second, "--home", home, "--json")
    assert failed.exit_code == 1, failed.stdout
    assert "Traceback" not in failed.stderr and len(failed.stderr.strip().splitlines()) == 1, failed.stderr
    assert "full" in failed.stderr.lower() or "space" in failed.stderr.lower(), failed.stderr
    filler.unlink()
    committed = 6 if leave < 1024 * 1024 else 0  # the first enroll's faces, nothing of the failed one
    assert cli_json("info", "--home", home)["faces"] == committed
    done = cli_json("enroll", second, "--home", home)
    assert done["faces"] == 240 + (6 if leave < 1024 * 1024 else 0)
    assert cli_json("query", next(second.rglob("*.jpg")), "--home", home)["score"] > 0.99
