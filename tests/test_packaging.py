"""The wheel (a non-editable install) carries the console script, the CLI, the migrations and the
reference encoder."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    return zipfile.ZipFile(next(out.glob("facesearch-*.whl")))


def test_wheel_holds_cli_and_migrations(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for required in [
        "facesearch/gallery/engine.py",
        "facesearch/cli/main.py",
        "facesearch/models/margins.py",
        "facesearch/training/labelled.py",
        "facesearch/migrations/env.py",
        "facesearch/migrations/runner.py",
        "facesearch/migrations/script.py.mako",
        "facesearch/migrations/versions/0001_initial.py",
        "facesearch/migrations/versions/0002_index_kind.py",
        "facesearch/migrations/versions/0003_detector.py",
        "facesearch/embedding/face_finding/detectors.py",
        "facesearch/embedding/onnx_runtime.py",
        "facesearch/models/reference.pt",
        "facesearch/models/reference.onnx",
        "facesearch/models/reference.onnx.json",
        "facesearch/serving/app.py",
        "facesearch/serving/routes.py",
        "facesearch/serving/page/index.html",
    ]:
        assert required in names, required
    assert not any(n.startswith(("cli/", "migrations/", "tests/")) for n in names)


def test_wheel_declares_the_console_script(wheel: zipfile.ZipFile) -> None:
    entry = next(n for n in wheel.namelist() if n.endswith("entry_points.txt"))
    assert "facesearch = facesearch.cli.main:main" in wheel.read(entry).decode()


def test_installed_wheel_runs_enroll_and_query(wheel: zipfile.ZipFile, tmp_path: Path, faces_dir: Path) -> None:
    """Install the wheel alone into a folder that shadows the checkout, and use it, where
    torch cannot be imported (a plain install has none: the shipped reference runs on ONNX)."""
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), wheel.filename],
        check=True,
        capture_output=True,
    )
    env = {"PYTHONPATH": str(target), "FACESEARCH_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}

    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, str(ROOT / "tests" / "without_torch.py"), *args, "--json"],
            env=env, cwd=tmp_path, capture_output=True, text=True, check=True,
        )
        return done.stdout

    location = subprocess.run(
        [sys.executable, "-c", "import facesearch.migrations.runner as r; print(r.SCRIPT_LOCATION)"],
        env=env, cwd=tmp_path, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert location.startswith(str(target))
    # The shipped reference detects and aligns; synthetic faces are crops no detector finds.
    assert '"enrolled": 24' in run("enroll", str(faces_dir), "--no-detect")
    assert '"identity": "person_0002"' in run("query", str(faces_dir / "person_0002" / "0000.jpg"))


def test_checkout_is_the_package(tmp_path: Path) -> None:
    """A plain checkout imports what the wheel holds (the CLI and the migrations too), with
    nothing installed but the checkout on the path; alembic.ini names real folders."""
    done = subprocess.run(
        [sys.executable, "-c", "import facesearch.migrations.runner as r, facesearch.cli.main; print(r.SCRIPT_LOCATION)"],
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, cwd=tmp_path, capture_output=True, text=True, check=True,
    )
    assert Path(done.stdout.strip()).resolve() == (ROOT / "facesearch" / "migrations").resolve()
    ini = (ROOT / "alembic.ini").read_text()
    location = next(line.split("=", 1)[1].strip() for line in ini.splitlines() if line.startswith("script_location"))
    assert (ROOT / location / "env.py").is_file()
