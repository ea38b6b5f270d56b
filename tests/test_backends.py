"""The same gallery on every backend: 40 real probes answered identically by SQLite + FAISS flat,
PostgreSQL + FAISS flat and SQLite + Milvus Lite (the cfp-dev gallery, shipped reference)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facesearch.gallery.engine import Gallery
from tests.conftest import CFP, needs_datasets
from tests.postgres import PostgresServer

KNOWN = CFP / "verification" / "known"
PROBES = CFP / "verification" / "unknown_dev"

pytestmark = [needs_datasets(KNOWN), pytest.mark.realdata]


def forty_answers(gallery: Gallery) -> list[tuple[str, list[str], np.ndarray]]:
    out = []
    for probe in sorted(PROBES.iterdir())[:40]:
        result = gallery.query(probe, top_k=5)
        out.append((result.identity, [m.identity for m in result.matches], np.array([m.score for m in result.matches])))
    return out


def assert_identical(got: list, expected: list) -> None:
    assert [(i, names) for i, names, _ in got] == [(i, names) for i, names, _ in expected]
    assert all(np.allclose(a, b, atol=1e-4) for (_, _, a), (_, _, b) in zip(got, expected))


def test_forty_probes_answered_identically_on_sqlite_postgresql_and_milvus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_server: PostgresServer
) -> None:
    pytest.importorskip("milvus_lite", reason="Milvus Lite is not installed: pip install 'facesearch[milvus]'")
    monkeypatch.delenv("FACESEARCH_MODEL")  # the shipped reference, on the real photos it is for
    with Gallery(tmp_path / "sqlite") as g:
        assert g.enroll(KNOWN).enrolled == 600
        flat = forty_answers(g)
        g.set_index("milvus")
        assert_identical(forty_answers(g), flat)
    with Gallery(tmp_path / "postgresql", postgres_server.url()) as g:
        assert g.enroll(KNOWN).enrolled == 600
        assert_identical(forty_answers(g), flat)
    assert len({identity for identity, _, _ in flat}) > 5  # real answers, not one name forty times
