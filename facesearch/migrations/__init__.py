"""Alembic environment and versions for the gallery schema (facesearch.migrations, in the checkout as in the wheel).

``HEAD`` and ``stored_revision`` let a gallery that is already at the newest schema open
without importing Alembic (0.15 s of a cold query); tests/test_store.py keeps ``HEAD`` equal
to the newest script in ``versions/``.
"""

from __future__ import annotations

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

HEAD = "0006"


def stored_revision(engine: Engine) -> str | None:
    """The schema revision a database says it has (None: not a gallery database yet)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
