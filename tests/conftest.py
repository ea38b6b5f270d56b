"""Shared fixtures: a synthetic gallery, an isolated home, and a CLI runner."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from facesearch.cli.main import app
from typer.testing import CliRunner, Result

from facesearch.synthetic import write_dataset
from tests import postgres
from tests.postgres import PostgresServer

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
CFP = DATASETS / "cfp-dev"


settings.register_profile("default", max_examples=60)  # fast enough for every run
settings.register_profile("long", max_examples=1200)  # pytest --hypothesis-profile=long
settings.load_profile("default")

CROP_ENCODER = Path(__file__).parent / "data" / "crop-encoder.pt"
"""The core tests' default encoder: a crop encoder (the project's first reference, trained on
tight FIW crops), because the synthetic faces are crops that no real detector finds. The
shipped reference, which detects and aligns, is tested on real photos (test_realdata.py,
test_realfaces.py) and by name where a test needs it."""


@pytest.fixture(autouse=True)
def crop_encoder_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACESEARCH_MODEL", str(CROP_ENCODER))


def needs_datasets(path: Path = DATASETS) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not path.exists(), reason=f"{path} not present")


@pytest.fixture(scope="session")
def faces_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 synthetic people x 3 photos, in the DIR/<identity>/<images> layout."""
    root = tmp_path_factory.mktemp("faces")
    write_dataset(root, identities=8, images_per_identity=3, seed=1)
    return root


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("FACESEARCH_HOME", str(path))
    monkeypatch.delenv("FACESEARCH_DATABASE_URL", raising=False)
    return path


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole run (skips where none can be started)."""
    reason = postgres.why_not()
    if reason:
        pytest.skip(reason)
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The engine's tests run on both databases: SQLite in the home, and a fresh database on a
    real PostgreSQL server, chosen the way a user chooses it ($FACESEARCH_DATABASE_URL), so
    Gallery(home) and the CLI, in this process or a child, open it."""
    if request.param == "sqlite":
        return f"sqlite:///{home / 'gallery.db'}"
    url = request.getfixturevalue("postgres_server").url()
    monkeypatch.setenv("FACESEARCH_DATABASE_URL", url)
    return url


def cli(*args: Any) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def cli_json(*args: Any, code: int = 0) -> dict[str, Any]:
    """Run a command with --json; check the exit code and that stdout is one JSON object."""
    result = cli(*args, "--json")
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    payload = json.loads(result.stdout)
    assert isinstance(payload, dict)
    return payload
