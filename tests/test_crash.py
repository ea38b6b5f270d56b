"""A handful of kill -9 runs (benchmarks/reliability.py runs a hundred): see tests/crash.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from facesearch.synthetic import write_dataset
from tests.crash import crash_once, run
from tests.postgres import PostgresServer


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("crash") / "people"
    write_dataset(root, identities=6, images_per_identity=8, seed=31)
    return root


def kill_and_check(source: Path, home: Path, operation: str, delay: float, enrolled_first: bool) -> None:
    if enrolled_first:
        run(["enroll", str(source)], home)
    expected = 40 if operation == "remove" else 48
    result = crash_once(operation, source, home, delay, expected)
    assert result.problems == [], result


@pytest.mark.parametrize(
    "operation, delay, enrolled_first",
    [("enroll", 4.0, False), ("enroll", 6.0, False), ("index-ivf", 3.5, True), ("remove", 3.5, True),
     ("serve-enroll", 5.5, False)],
)
def test_a_killed_command_loses_nothing_and_finishes_when_run_again(
    source: Path, tmp_path: Path, operation: str, delay: float, enrolled_first: bool
) -> None:
    kill_and_check(source, tmp_path / "home", operation, delay, enrolled_first)


@pytest.mark.parametrize("operation, delay, enrolled_first", [("enroll", 5.0, False), ("remove", 3.5, True)])
def test_a_killed_command_on_postgresql_loses_nothing(
    source: Path, tmp_path: Path, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch,
    operation: str, delay: float, enrolled_first: bool,
) -> None:
    """The same kill -9 with the gallery on a PostgreSQL server: the server rolls the killed
    client's open transaction back, and the home's index is reconciled with what committed."""
    monkeypatch.setenv("FACESEARCH_DATABASE_URL", postgres_server.url())
    kill_and_check(source, tmp_path / "home", operation, delay, enrolled_first)
    assert not (tmp_path / "home" / "gallery.db").exists()
