"""The database: migrations on open, newer schemas refused, faces de-duplicated and removed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from facesearch.migrations import HEAD
from facesearch.migrations.runner import current_revision, head_revision
from sqlalchemy import inspect, text

from facesearch.errors import GalleryError
from facesearch.store import NewFace, Store


def open_store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'g.db'}")
    store.migrate()
    return store


def face(name: str, digest: str, dim: int = 4) -> NewFace:
    return NewFace(name, f"/x/{name}/{digest}.jpg", digest, np.ones(dim, np.float32) / 2)


def test_open_applies_migrations_to_head(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    assert current_revision(store.engine) == head_revision() == HEAD  # HEAD: opens without Alembic
    assert {"gallery", "identities", "faces", "alembic_version"} <= set(inspect(store.engine).get_table_names())
    store.migrate()  # idempotent


def test_database_from_a_newer_schema_is_refused(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00dcafe9999'"))
    with pytest.raises(GalleryError, match="newer version"):
        Store(store.url).migrate()


def test_add_faces_skips_known_content_and_bumps_revision(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    before = store.state().revision
    ids, kept, revision = store.add_faces([face("a", "h1"), face("a", "h2"), face("b", "h1")])
    assert len(ids) == 2 and [f.content_hash for f in kept] == ["h1", "h2"]
    assert revision == before + 1
    ids2, _, revision2 = store.add_faces([face("c", "h2")])
    assert ids2 == [] and revision2 == revision
    assert set(store.known_hashes(["h1", "h3"])) == {"h1"}
    assert store.identities() == [("a", 2)]


def test_face_ids_are_never_reused(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    ids, _, _ = store.add_faces([face("a", "h1"), face("a", "h2")])
    store.remove_identity("a")
    new_ids, _, _ = store.add_faces([face("a", "h3")])
    assert new_ids[0] > max(ids)


def test_remove_identity(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    ids, _, _ = store.add_faces([face("a", "h1"), face("b", "h2")])
    removed, revision = store.remove_identity("a")
    assert removed == [ids[0]] and revision == store.state().revision
    assert store.remove_identity("a") is None
    assert store.counts() == (1, 1)


def test_a_gallery_from_the_first_schema_is_upgraded_with_its_data(tmp_path: Path) -> None:
    from alembic import command
    from facesearch.migrations.runner import alembic_config
    from sqlalchemy import create_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(text(
            "INSERT INTO gallery (id, uuid, threshold, threshold_source, revision) "
            "VALUES (1, 'old-uuid', 0.42, 'tuned', 7)"
        ))
    engine.dispose()
    store = Store(url)
    store.migrate()
    assert current_revision(store.engine) == head_revision() != "0001"
    row = store.gallery()
    assert (row.uuid, row.threshold, row.threshold_source, row.revision) == ("old-uuid", 0.42, "tuned", 7)
    assert store.index_spec() == ("flat", {})
    store.set_index_spec("ivf", {"nprobe": 8})
    assert store.index_spec() == ("ivf", {"nprobe": 8})
