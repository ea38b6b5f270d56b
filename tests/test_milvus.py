"""The milvus index kind on Milvus Lite: answers as FAISS flat, deletes, repairs, refuses."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("milvus_lite", reason="Milvus Lite is not installed: pip install 'facesearch[milvus]'")

from facesearch.gallery.engine import Gallery  # noqa: E402
from facesearch.errors import Busy, InputError  # noqa: E402
from facesearch.index.milvus import LITE_FILE, default_collection  # noqa: E402
from tests.conftest import cli_json  # noqa: E402
from tests.test_engine import answers as engine_answers  # noqa: E402


def answers(g: Gallery, faces_dir: Path) -> list[tuple[str, list[tuple[str, float]]]]:
    return engine_answers(g, faces_dir, top_k=5)


def assert_same(got: list, expected: list) -> None:
    """Same people in the same order, scores equal to 1e-4 (the issue's bar; float32 sums)."""
    assert [(i, [n for n, _ in m]) for i, m in got] == [(i, [n for n, _ in m]) for i, m in expected]
    for (_, a), (_, b) in zip(got, expected):
        assert np.allclose([s for _, s in a], [s for _, s in b], atol=1e-4)


def milvus_ids(g: Gallery) -> list[int]:
    return g.index.synced().ids().tolist()


def test_milvus_lite_answers_as_faiss_flat_and_follows_enroll_and_remove(
    home: Path, database: str, faces_dir: Path
) -> None:
    with Gallery(home) as g:
        g.enroll(faces_dir)
        flat = answers(g, faces_dir)
        g.set_index("milvus")
        assert g.index_info()["kind"] == "milvus" and g.index_info()["up_to_date"]
        assert (home / LITE_FILE).is_dir()
        assert_same(answers(g, faces_dir), flat)
        assert len(milvus_ids(g)) == 24
        ids = sorted(i for i, r in g.store.faces(range(1, 25)).items() if r.identity == "person_0003")
        assert g.remove("person_0003") == 3
        remaining = milvus_ids(g)
        assert len(remaining) == 21 and not set(ids) & set(remaining)  # the person's vectors deleted
    with Gallery(home) as g:  # another process: the collection and its stamp persist
        assert g.index_info()["up_to_date"]
        assert "person_0003" not in [m.identity for m in g.query(faces_dir / "person_0003" / "0000.jpg", top_k=8).matches]
        g.set_index("flat")
        expected = answers(g, faces_dir)
        g.set_index("milvus")
        assert_same(answers(g, faces_dir), expected)
    assert not [p for p in home.rglob("*") if p.is_file() and p.stat().st_mode & 0o077]  # private, like the home


def test_a_missing_or_stale_collection_is_rebuilt_from_the_database(home: Path, faces_dir: Path) -> None:
    with Gallery(home) as g:
        g.enroll(faces_dir)
        g.set_index("milvus")
        expected = answers(g, faces_dir)
        index = g.index.synced()
        index.remove(index.ids()[:5])  # vectors lost behind the database's back (a crash)...
        index.stamp = replace(index.stamp, revision=index.stamp.revision - 1)  # ...before the stamp
        g.index.backend().save(index)
    with Gallery(home) as g:
        assert_same(answers(g, faces_dir), expected)
        assert len(milvus_ids(g)) == 24
    shutil.rmtree(home / LITE_FILE)  # the whole Lite file gone
    with Gallery(home) as g:
        assert_same(answers(g, faces_dir), expected)
        assert g.index_info()["up_to_date"]


def test_a_collection_that_is_not_this_gallerys_is_refused_and_left_alone(home: Path, faces_dir: Path, tmp_path: Path) -> None:
    from pymilvus import DataType, MilvusClient

    uri = str(tmp_path / "shared.db")
    with Gallery(home) as g:
        g.enroll(faces_dir)
    client = MilvusClient(uri)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=64)  # another dimension, another owner
    client.create_collection("theirs", schema=schema)
    client.close()
    payload = cli_json("index", "milvus", "--uri", uri, "--collection", "theirs", code=1)
    assert "theirs" in payload["error"] and "not facesearch's" in payload["error"] and "dimension 64" in payload["error"]
    client = MilvusClient(uri)
    assert client.has_collection("theirs")  # untouched
    client.close()


def test_bad_milvus_places_are_clear_errors(home: Path, faces_dir: Path) -> None:
    cli_json("enroll", faces_dir)
    assert "a Milvus Lite file ends in .db" in cli_json("index", "milvus", "--uri", "not-a-uri", code=1)["error"]
    started = time.monotonic()
    error = cli_json("index", "milvus", "--uri", "http://127.0.0.1:9", code=1)["error"]
    assert "cannot reach Milvus at http://127.0.0.1:9" in error and time.monotonic() - started < 60
    assert "--uri is for the milvus index kind" in cli_json("index", "flat", "--uri", "x.db", code=1)["error"]
    assert cli_json("index")["index"]["kind"] == "flat"  # nothing changed by the failures
    with pytest.raises(InputError):
        with Gallery(home) as g:
            g.set_index("milvus", collection="")


HOLD = """
import sys, time
from pymilvus import MilvusClient
client = MilvusClient(sys.argv[1])
print("open", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_a_lite_file_open_in_another_process_is_waited_for_then_busy(home: Path, faces_dir: Path) -> None:
    with Gallery(home) as g:
        g.enroll(faces_dir)
        g.set_index("milvus")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(home / LITE_FILE), "30"], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"open"
        with Gallery(home, lock_timeout=1.0) as g, pytest.raises(Busy, match="Milvus Lite allows one process"):
            g.query(faces_dir / "person_0001" / "0000.jpg")
    finally:
        holder.kill()
        holder.wait()
    with Gallery(home) as g:  # free again: answers
        assert g.query(faces_dir / "person_0001" / "0000.jpg").identity == "person_0001"


def test_default_collection_names_are_valid_and_per_gallery() -> None:
    name = default_collection("123e4567-e89b-12d3-a456-426614174000")
    assert name == "facesearch_123e4567e89b12d3a456426614174000" and name.replace("_", "").isalnum()
