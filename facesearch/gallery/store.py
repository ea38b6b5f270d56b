"""The gallery database: the source of truth, embeddings included.

SQLAlchemy 2.x over SQLite by default; PostgreSQL through psycopg 3 (``postgresql://...``, the
``postgres`` extra); any other SQLAlchemy URL is used as given. The schema is owned by the
Alembic migrations in ``facesearch.migrations`` and is brought up to date on open; a
database written by a newer facesearch is refused rather than misread.

Writers serialise on the gallery row (``SELECT ... FOR UPDATE`` where the database has row
locks): homes on several machines may share one PostgreSQL database, and two of them enrolling
the same new person or photo at once must not both insert it. SQLite has one writer anyway.

Every change to the set of faces bumps ``gallery.revision`` in the same transaction, so the
FAISS index (derived data) can tell whether it reflects the database it sits beside.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    select,
    update,
)
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from facesearch.errors import GalleryError
from facesearch.gallery.home import private_file

DEFAULT_THRESHOLD = 0.5


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class GalleryRow(Base):
    """The single row of gallery-wide state: bound encoder, threshold, revision."""

    __tablename__ = "gallery"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False)
    encoder_fingerprint: Mapped[str | None] = mapped_column(String(64))
    encoder_config: Mapped[str | None] = mapped_column(Text)
    embedding_dim: Mapped[int | None] = mapped_column(Integer)
    threshold: Mapped[float] = mapped_column(Float, nullable=False)
    threshold_source: Mapped[str] = mapped_column(String(16), nullable=False)
    threshold_fpir: Mapped[float | None] = mapped_column(Float)  # the rate a source "fpir" threshold holds
    threshold_people: Mapped[int | None] = mapped_column(Integer)  # and the people it was estimated among
    revision: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    index_kind: Mapped[str] = mapped_column(String(16), nullable=False, default="flat")
    index_params: Mapped[str | None] = mapped_column(Text)
    detector: Mapped[str | None] = mapped_column(Text)
    scoring: Mapped[str] = mapped_column(String(16), nullable=False, default="nearest", server_default="nearest")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class Identity(Base):
    __tablename__ = "identities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(512), unique=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class Group(Base):
    """A group of unnamed faces that look like one person (``facesearch cluster``). Ids are
    never reused, so a group keeps its number for as long as it exists."""

    __tablename__ = "groups"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class Face(Base):
    """One face of an enrolled photo. ``id`` is also the vector's id in the FAISS index, so
    ids are never reused (AUTOINCREMENT): a stale index can never attribute a vector to a
    newer face. A named person's photo gives its largest face (``face_number`` 0); an
    unnamed photo (``enroll --unnamed``) gives every face, largest first, with no person."""

    __tablename__ = "faces"
    __table_args__ = (
        UniqueConstraint("content_hash", "face_number", name="uq_faces_photo_face"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"), index=True)
    source_path: Mapped[str] = mapped_column(Text, nullable=False)
    content_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    face_number: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    embedding: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    box: Mapped[str | None] = mapped_column(Text)  # JSON [left, top, right, bottom]
    landmarks: Mapped[str | None] = mapped_column(Text)  # JSON [[x, y] x 5]
    detection_score: Mapped[float | None] = mapped_column(Float)
    quality: Mapped[float | None] = mapped_column(Float)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="SET NULL", name="fk_faces_group"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


@dataclass(frozen=True)
class GalleryState:
    """What the index must agree with: the database's identity, revision and encoder."""

    uuid: str
    revision: int
    fingerprint: str | None
    dim: int | None


@dataclass(frozen=True)
class NewFace:
    identity: str | None  # None: an unnamed face (enroll --unnamed)
    source_path: str
    content_hash: str
    embedding: np.ndarray
    face_number: int = 0  # which face of its photo, largest first
    face: dict[str, Any] | None = None  # box, landmarks, detection_score (Face.to_dict); None: the whole photo
    quality: float | None = None


@dataclass(frozen=True)
class FaceRecord:
    id: int
    identity: str
    source_path: str


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001 (DB-API objects)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the enrolling writer
    cursor.execute("PRAGMA synchronous=FULL")  # a committed enroll survives a power cut
    cursor.execute("PRAGMA secure_delete=ON")  # removed faces are overwritten, not just unlinked
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


CONNECT_TIMEOUT = 10
"""Seconds to wait for a database server before saying it does not answer."""


def database_url(url: str) -> URL:
    """A user's database URL as SQLAlchemy should open it: ``postgresql://`` means psycopg 3
    (what the ``postgres`` extra installs), not SQLAlchemy's default driver, psycopg2."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise GalleryError(f"not a database URL: {url!r} (e.g. sqlite:///PATH or postgresql://USER@HOST/DB)") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


class Store:
    """Typed access to the gallery database; one instance per process."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = database_url(url)
        self.backend = parsed.get_backend_name()
        self.is_sqlite = self.backend == "sqlite"
        if self.is_sqlite and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            private_file(Path(parsed.database))
        try:
            self.engine: Engine = create_engine(parsed, connect_args=self._connect_args(), pool_pre_ping=not self.is_sqlite)
        except ModuleNotFoundError as exc:
            extra = ": pip install 'facesearch[postgres]'" if self.backend == "postgresql" else ""
            raise GalleryError(f"the database driver for {self.safe_url} is not installed ({exc.name}){extra}") from None
        except NoSuchModuleError:
            raise GalleryError(f"no SQLAlchemy dialect for {self.safe_url}") from None
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._pinned = threading.local()

    def _connect_args(self) -> dict:
        if self.is_sqlite:
            return {"timeout": 30}
        if self.backend == "postgresql":
            return {"connect_timeout": CONNECT_TIMEOUT, "application_name": "facesearch"}
        return {}

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed on success, rolled back on any error."""
        with self._sessions.begin() as session:
            yield session

    # --- schema -------------------------------------------------------------------------

    def migrate(self) -> None:
        """Apply pending migrations; refuse a database from a newer schema."""
        from facesearch.migrations import HEAD, stored_revision

        try:
            if stored_revision(self.engine) != HEAD:
                from facesearch.migrations.runner import upgrade

                upgrade(self.engine)
        except OperationalError as exc:
            reason = " ".join(str(exc.orig).split())  # one line: servers' messages span several
            raise GalleryError(f"cannot open the gallery database {self.safe_url}: {reason}") from None
        try:
            with self.session() as session:
                if session.get(GalleryRow, 1) is None:
                    session.add(
                        GalleryRow(
                            id=1,
                            uuid=str(uuid.uuid4()),
                            threshold=DEFAULT_THRESHOLD,
                            threshold_source="default",
                            revision=0,
                        )
                    )
        except IntegrityError:
            pass  # another process (another home on a shared database) created it first

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    # --- gallery-wide state -------------------------------------------------------------

    @contextmanager
    def one_read(self, fresh: bool = False) -> Iterator[None]:
        """Within it (in this thread), ``gallery()``, ``state()`` and ``index_spec()`` answer
        from one read of the gallery row: a query takes its encoder, detector, threshold and
        index from one consistent view, in one round trip instead of several (each about 0.3 ms
        on SQLite, profiled; a network round trip on PostgreSQL). Nested, it keeps the outer read,
        unless ``fresh``: the index reads the row again under its own lock, so that it never
        judges itself against a view older than itself. For readers: writes are not seen."""
        outer = getattr(self._pinned, "row", None)
        if outer is not None and not fresh:
            yield
            return
        self._pinned.row = self._read_gallery()
        try:
            yield
        finally:
            self._pinned.row = outer

    def gallery(self) -> GalleryRow:
        pinned = getattr(self._pinned, "row", None)
        return pinned if pinned is not None else self._read_gallery()

    def _read_gallery(self) -> GalleryRow:
        with self.session() as session:
            return _gallery_row(session)

    def state(self, session: Session | None = None) -> GalleryState:
        row = self.gallery() if session is None else _gallery_row(session)
        return GalleryState(row.uuid, row.revision, row.encoder_fingerprint, row.embedding_dim)

    def bind_encoder(self, fingerprint: str, config: dict, dim: int) -> None:
        """Bind the gallery (while it has no faces) to an encoder."""
        self.rebind(fingerprint, config, dim, [], np.zeros((0, dim), np.float32))

    def set_threshold(self, value: float, source: str, fpir: float | None = None, people: int | None = None) -> None:
        """The threshold, where it came from, and (source ``fpir``) the rate it holds and the
        number of people it was estimated among."""
        with self.session() as session:
            session.execute(
                update(GalleryRow)
                .where(GalleryRow.id == 1)
                .values(threshold=value, threshold_source=source, threshold_fpir=fpir, threshold_people=people,
                        updated_at=_now())
            )

    def set_scoring(self, rule: str) -> None:
        with self.session() as session:
            session.execute(update(GalleryRow).where(GalleryRow.id == 1).values(scoring=rule, updated_at=_now()))

    def index_spec(self) -> tuple[str, dict[str, Any]]:
        """The gallery's index kind and its search parameters (see facesearch.index.spec)."""
        row = self.gallery()
        return row.index_kind, json.loads(row.index_params or "{}")

    def set_index_spec(self, kind: str, params: dict[str, Any]) -> None:
        with self.session() as session:
            session.execute(
                update(GalleryRow)
                .where(GalleryRow.id == 1)
                .values(index_kind=kind, index_params=json.dumps(params, sort_keys=True), updated_at=_now())
            )

    def set_detector(self, spec: str | None) -> None:
        """The face detector enrolls used (``--detector``), which queries then default to."""
        with self.session() as session:
            session.execute(update(GalleryRow).where(GalleryRow.id == 1).values(detector=spec, updated_at=_now()))

    # --- faces --------------------------------------------------------------------------

    def stored_sources(self, paths: Iterable[str]) -> set[str]:
        """Which of these files are the source of an enrolled face."""
        wanted = list(set(paths))
        found: set[str] = set()
        with self.session() as session:
            for chunk in chunks(wanted, 500):
                found.update(session.scalars(select(Face.source_path).where(Face.source_path.in_(chunk))))
        return found

    def known_hashes(self, hashes: Iterable[str]) -> dict[str, str | None]:
        """Which of these photos (content hashes) are already enrolled: {hash: the person's
        name, or None for a photo of unnamed faces}."""
        wanted = list(set(hashes))
        found: dict[str, str | None] = {}
        with self.session() as session:
            for chunk in chunks(wanted, 500):
                rows = session.execute(
                    select(Face.content_hash, Identity.name)
                    .outerjoin(Identity, Face.identity_id == Identity.id)
                    .where(Face.content_hash.in_(chunk))
                )
                for digest, name in rows:
                    if found.get(digest) is None:
                        found[digest] = name
        return found

    def add_faces(self, faces: Sequence[NewFace]) -> tuple[list[int], list[NewFace], int]:
        """Insert faces in one transaction, skipping faces (photo content, face number)
        already present.

        Returns (ids, the faces inserted, the new revision).
        """
        with self.session() as session:
            self.writing(session)
            present = {
                (digest, number)
                for digest, number in session.execute(
                    select(Face.content_hash, Face.face_number).where(
                        Face.content_hash.in_(list({f.content_hash for f in faces}))
                    )
                )
            }
            kept, seen = [], set(present)
            for face in faces:
                key = (face.content_hash, face.face_number)
                if key not in seen:
                    seen.add(key)
                    kept.append(face)
            identities = self.identity_ids(session, {f.identity for f in kept if f.identity is not None})
            rows = [
                Face(
                    identity_id=identities[face.identity] if face.identity is not None else None,
                    source_path=face.source_path,
                    content_hash=face.content_hash,
                    face_number=face.face_number,
                    embedding=np.ascontiguousarray(face.embedding, dtype=np.float32).tobytes(),
                    box=json.dumps(face.face["box"]) if face.face else None,
                    landmarks=json.dumps(face.face["landmarks"]) if face.face else None,
                    detection_score=face.face["detection_score"] if face.face else None,
                    quality=face.quality,
                )
                for face in kept
            ]
            session.add_all(rows)
            session.flush()
            revision = self.bump(session) if rows else self.state(session).revision
            return [row.id for row in rows], kept, revision

    def identity_ids(self, session: Session, names: set[str]) -> dict[str, int]:
        existing = {
            name: ident
            for ident, name in session.execute(
                select(Identity.id, Identity.name).where(Identity.name.in_(list(names)))
            )
        }
        for name in sorted(names - set(existing)):
            row = Identity(name=name)
            session.add(row)
            session.flush()
            existing[name] = row.id
        return existing

    @staticmethod
    def writing(session: Session) -> None:
        """Take the gallery row for this transaction: the one place writers queue (see the
        module's docstring). A no-op on SQLite, whose writers are already one at a time."""
        session.execute(select(GalleryRow.id).where(GalleryRow.id == 1).with_for_update())

    @staticmethod
    def bump(session: Session) -> int:
        session.execute(
            update(GalleryRow)
            .where(GalleryRow.id == 1)
            .values(revision=GalleryRow.revision + 1, updated_at=_now())
        )
        return session.get(GalleryRow, 1, populate_existing=True).revision  # type: ignore[union-attr]

    def remove_identity(self, name: str) -> tuple[list[int], int] | None:
        """Delete a person and all their faces: (removed face ids, new revision), or None
        if there is no such identity."""
        with self.session() as session:
            self.writing(session)
            ident = session.scalar(select(Identity.id).where(Identity.name == name))
            if ident is None:
                return None
            ids = list(session.scalars(select(Face.id).where(Face.identity_id == ident)))
            session.execute(delete(Face).where(Face.identity_id == ident))
            session.execute(delete(Identity).where(Identity.id == ident))
            revision = self.bump(session)
        self.compact_journal()
        return ids, revision

    def remove_face(self, face_id: int) -> tuple[list[int], int] | None:
        """Delete one face: ([its id], new revision), or None if there is no such face. A
        person left with no face stays (named, with 0 faces) until removed."""
        with self.session() as session:
            self.writing(session)
            if session.get(Face, int(face_id)) is None:
                return None
            session.execute(delete(Face).where(Face.id == int(face_id)))
            revision = self.bump(session)
        self.compact_journal()
        return [int(face_id)], revision

    def has_identity(self, name: str) -> bool:
        with self.session() as session:
            return session.scalar(select(Identity.id).where(Identity.name == name)) is not None

    def compact_journal(self) -> None:
        """Leave no copy of deleted rows where this process can reach: SQLite folds its WAL
        into the database and truncates it (secure_delete has zeroed the pages); PostgreSQL
        vacuums the two tables, so the dead rows' space is pruned and reused. (A server's
        WAL archive and backups are its administrator's to expire.)"""
        if self.is_sqlite:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        elif self.backend == "postgresql":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM faces, identities, groups")

    def snapshot_ids(self) -> tuple[GalleryState, np.ndarray]:
        """The gallery state and every face id, read in one transaction (a consistent pair)."""
        with self.session() as session:
            state = self.state(session)
            ids = np.fromiter(session.scalars(select(Face.id).order_by(Face.id)), dtype=np.int64)
            return state, ids

    def embeddings(self, ids: Sequence[int], dim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) for the given face ids that still exist, in id order (``dim``: the
        vectors' size; None: read from the stored bytes, float32)."""
        out_ids: list[int] = []
        out_vecs: list[bytes] = []
        with self.session() as session:
            for chunk in chunks(sorted(int(i) for i in ids), 900):
                for face_id, blob in session.execute(
                    select(Face.id, Face.embedding).where(Face.id.in_(chunk)).order_by(Face.id)
                ):
                    out_ids.append(face_id)
                    out_vecs.append(blob)
        if dim is None:
            dim = len(out_vecs[0]) // 4 if out_vecs else 1
        vectors = np.frombuffer(b"".join(out_vecs), dtype=np.float32).reshape(-1, dim)
        return np.asarray(out_ids, dtype=np.int64), vectors

    def identity_embeddings(self, names: Sequence[str], dim: int) -> dict[str, np.ndarray]:
        """Every stored vector of each named person (people not enrolled are absent)."""
        blobs: dict[str, list[bytes]] = {}
        with self.session() as session:
            for chunk in chunks(list(names), 900):
                for name, blob in session.execute(
                    select(Identity.name, Face.embedding)
                    .join(Identity, Face.identity_id == Identity.id)
                    .where(Identity.name.in_(chunk))
                ):
                    blobs.setdefault(name, []).append(blob)
        return {name: np.frombuffer(b"".join(parts), dtype=np.float32).reshape(-1, dim) for name, parts in blobs.items()}

    def sources(self) -> list[tuple[int, str, str, int]]:
        """(id, source path, content hash, face number) of every face, in id order."""
        with self.session() as session:
            rows = session.execute(
                select(Face.id, Face.source_path, Face.content_hash, Face.face_number).order_by(Face.id)
            )
            return [(i, path, digest, number) for i, path, digest, number in rows]

    def rebind(
        self, fingerprint: str, config: dict, dim: int, ids: Sequence[int], vectors: np.ndarray
    ) -> None:
        """Swap every embedding and the bound encoder in one transaction (all or nothing)."""
        with self.session() as session:
            self.writing(session)
            for face_id, vector in zip(ids, np.ascontiguousarray(vectors, dtype=np.float32)):
                session.execute(
                    update(Face).where(Face.id == int(face_id)).values(embedding=vector.tobytes())
                )
            session.execute(
                update(GalleryRow)
                .where(GalleryRow.id == 1)
                .values(
                    encoder_fingerprint=fingerprint,
                    encoder_config=json.dumps(config, sort_keys=True),
                    embedding_dim=dim,
                    revision=GalleryRow.revision + 1,
                    updated_at=_now(),
                )
            )

    def faces(self, ids: Sequence[int]) -> dict[int, FaceRecord]:
        """Person and source of the given face ids that are named people's (ids no longer
        present, and unnamed faces, are absent)."""
        records: dict[int, FaceRecord] = {}
        with self.session() as session:
            for chunk in chunks([int(i) for i in ids], 900):
                for face_id, name, path in session.execute(
                    select(Face.id, Identity.name, Face.source_path)
                    .join(Identity, Face.identity_id == Identity.id)
                    .where(Face.id.in_(chunk))
                ):
                    records[face_id] = FaceRecord(face_id, name, path)
        return records

    def identities(self) -> list[tuple[str, int]]:
        with self.session() as session:
            rows = session.execute(
                select(Identity.name, func.count(Face.id))
                .outerjoin(Face, Face.identity_id == Identity.id)
                .group_by(Identity.id)
                .order_by(Identity.name)
            )
            return [(name, count) for name, count in rows]

    def counts(self) -> tuple[int, int]:
        """(identities, faces), unnamed faces included."""
        with self.session() as session:
            identities = session.scalar(select(func.count(Identity.id))) or 0
            faces = session.scalar(select(func.count(Face.id))) or 0
            return identities, faces

    def unnamed_count(self) -> int:
        """Faces that belong to no named person."""
        with self.session() as session:
            return session.scalar(select(func.count(Face.id)).where(Face.identity_id.is_(None))) or 0


def _gallery_row(session: Session) -> GalleryRow:
    row = session.get(GalleryRow, 1)
    assert row is not None, "migrate() creates the gallery row"
    return row


def chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
