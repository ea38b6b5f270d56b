"""The database: migrations on open, newer schemas refused, faces de-duplicated and removed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from facesearch.migrations import HEAD
from facesearch.migrations.runner import current_revision, head_revision
from sqlalchemy import inspect, text

from facesearch.errors import GalleryError
from facesearch.gallery.store import NewFace, Store


def open_store(url: str) -> Store:
    """A migrated store on ``url``: the ``database`` fixture's, SQLite or a real PostgreSQL."""
    store = Store(url)
    store.migrate()
    return store


def face(name: str, digest: str, dim: int = 4) -> NewFace:
    return NewFace(name, f"/x/{name}/{digest}.jpg", digest, np.ones(dim, np.float32) / 2)


def test_open_applies_migrations_to_head(database: str) -> None:
    store = open_store(database)
    assert current_revision(store.engine) == head_revision() == HEAD  # HEAD: opens without Alembic
    assert {"gallery", "identities", "faces", "alembic_version"} <= set(inspect(store.engine).get_table_names())
    store.migrate()  # idempotent


def test_database_from_a_newer_schema_is_refused(database: str) -> None:
    store = open_store(database)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00dcafe9999'"))
    with pytest.raises(GalleryError, match="newer version"):
        Store(store.url).migrate()


def test_add_faces_skips_known_content_and_bumps_revision(database: str) -> None:
    store = open_store(database)
    before = store.state().revision
    ids, kept, revision = store.add_faces([face("a", "h1"), face("a", "h2"), face("b", "h1")])
    assert len(ids) == 2 and [f.content_hash for f in kept] == ["h1", "h2"]
    assert revision == before + 1
    ids2, _, revision2 = store.add_faces([face("c", "h2")])
    assert ids2 == [] and revision2 == revision
    assert set(store.known_hashes(["h1", "h3"])) == {"h1"}
    assert store.identities() == [("a", 2)]


def test_each_persons_vectors_and_the_scoring_rule(database: str) -> None:
    store = open_store(database)
    rng = np.random.default_rng(0)
    faces = [NewFace(n, f"/x/{n}/{d}.jpg", d, rng.standard_normal(4).astype(np.float32)) for n, d in
             [("a", "h1"), ("a", "h2"), ("b", "h3")]]
    store.add_faces(faces)
    got = store.identity_embeddings(["a", "b", "nobody"], 4)
    assert set(got) == {"a", "b"} and got["a"].shape == (2, 4)
    assert sorted(map(tuple, got["a"].tolist())) == sorted(tuple(f.embedding.tolist()) for f in faces[:2])
    assert store.gallery().scoring == "nearest"
    store.set_scoring("mean")
    assert Store(store.url).gallery().scoring == "mean"


def test_face_ids_are_never_reused(database: str) -> None:
    store = open_store(database)
    ids, _, _ = store.add_faces([face("a", "h1"), face("a", "h2")])
    store.remove_identity("a")
    new_ids, _, _ = store.add_faces([face("a", "h3")])
    assert new_ids[0] > max(ids)


def test_remove_identity(database: str) -> None:
    store = open_store(database)
    ids, _, _ = store.add_faces([face("a", "h1"), face("b", "h2")])
    removed, revision = store.remove_identity("a")
    assert removed == [ids[0]] and revision == store.state().revision
    assert store.remove_identity("a") is None
    assert store.counts() == (1, 1)


def test_a_gallery_from_the_first_schema_is_upgraded_with_its_data(database: str, home: Path) -> None:
    from alembic import command
    from facesearch.migrations.runner import alembic_config
    from sqlalchemy import create_engine

    from facesearch.gallery.store import database_url

    url = database
    home.mkdir()  # where the SQLite file goes (Store would make it; this writes before Store)
    engine = create_engine(database_url(url))
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
    assert store.gallery().scoring == "nearest"  # what every gallery did before 0004
    store.set_index_spec("ivf", {"nprobe": 8})
    assert store.index_spec() == ("ivf", {"nprobe": 8})


def test_postgresql_urls_mean_psycopg_3() -> None:
    from facesearch.gallery.store import database_url

    for given in ("postgresql://u@h/db", "postgres://u@h/db"):
        assert database_url(given).drivername == "postgresql+psycopg"
    assert database_url("postgresql+psycopg2://u@h/db").drivername == "postgresql+psycopg2"  # as given
    assert database_url("sqlite:///x.db").drivername == "sqlite"


@pytest.mark.parametrize(
    "url, said",
    [
        ("no-scheme-at-all", "not a database URL"),
        ("nosuchdb://u@h/db", "no SQLAlchemy dialect"),
        ("postgresql://facesearch@127.0.0.1:1/gallery", "cannot open the gallery database postgresql://facesearch@127.0.0.1:1/gallery: .*127.0.0.1"),
        ("postgresql://facesearch:secret@db.invalid/gallery", "cannot open the gallery database postgresql://facesearch:\\*\\*\\*@db.invalid/gallery: .*db.invalid"),
    ],
)
def test_a_database_url_that_does_not_connect_is_one_clear_line(url: str, said: str) -> None:
    with pytest.raises(GalleryError, match=said) as caught:
        Store(url).migrate()
    assert "\n" not in str(caught.value) and "secret" not in str(caught.value)


def test_0005_keeps_every_face_and_never_reuses_an_id(database: str, home: Path) -> None:
    """A 0004 gallery (a face per photo, each with a person) migrates to faces as rows: its
    faces keep their ids and vectors, the id sequence goes on past the largest id ever given
    (a removed face's included), a face may have no person, and a photo may give several."""
    from alembic import command
    from facesearch.migrations.runner import alembic_config
    from sqlalchemy import create_engine

    from facesearch.gallery.store import database_url

    home.mkdir()
    engine = create_engine(database_url(database))
    with engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "0004")
        conn.execute(text("INSERT INTO gallery (id, uuid, threshold, threshold_source, revision, index_kind, scoring) "
                          "VALUES (1, 'u', 0.5, 'default', 3, 'flat', 'nearest')"))
        conn.execute(text("INSERT INTO identities (id, name) VALUES (1, 'ada')"))
        for face_id in (1, 2, 3):
            conn.execute(text("INSERT INTO faces (id, identity_id, source_path, content_hash, embedding) "
                              "VALUES (:i, 1, :p, :h, :e)"), {"i": face_id, "p": f"/p{face_id}.jpg", "h": f"h{face_id}",
                                                               "e": np.full(4, face_id, np.float32).tobytes()})
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT setval(pg_get_serial_sequence('faces', 'id'), 3)"))
        conn.execute(text("DELETE FROM faces WHERE id = 3"))  # the largest id, removed before the upgrade
    engine.dispose()
    store = Store(database)
    store.migrate()
    assert current_revision(store.engine) == HEAD
    ids, vectors = store.embeddings([1, 2], 4)
    assert ids.tolist() == [1, 2] and vectors[1].tolist() == [2.0] * 4
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO faces (identity_id, source_path, content_hash, face_number, embedding) "
                          "VALUES (NULL, '/group.jpg', 'hg', 0, :e), (NULL, '/group.jpg', 'hg', 1, :e)"),
                     {"e": np.zeros(4, np.float32).tobytes()})
        new_ids = sorted(conn.execute(text("SELECT id FROM faces WHERE content_hash = 'hg'")).scalars())
    assert new_ids[0] > 3  # 3 was given once: never again
