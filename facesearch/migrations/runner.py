"""Bring a gallery database to the newest schema this facesearch knows, on open.

Alembic is driven programmatically (no alembic.ini needed at run time), from the migration
scripts shipped inside the package, so an installed wheel migrates exactly as a checkout does.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Engine

from facesearch.errors import GalleryError

SCRIPT_LOCATION = str(Path(__file__).resolve().parent)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head() or ""


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


SCHEMA_LOCK = 0x66616365  # "face": the advisory lock key migrations take on PostgreSQL


def upgrade(engine: Engine) -> None:
    """Upgrade to head; a revision unknown to our scripts means a newer facesearch wrote it.

    On PostgreSQL, several machines may open a new database at once: the first to take the
    advisory lock migrates, the others then find it at head."""
    config = alembic_config()
    script = ScriptDirectory.from_config(config)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
        current = MigrationContext.configure(conn).get_current_revision()
        known = {rev.revision for rev in script.walk_revisions()}
        if current is not None and current not in known:
            raise GalleryError(
                f"the gallery database has schema revision {current}, which this facesearch does "
                "not know: it was written by a newer version; upgrade facesearch to open it"
            )
        if current == script.get_current_head():
            return
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
