"""Alembic environment: runs on the connection facesearch hands over, or, from the alembic
command line (developers writing a migration), on FACESEARCH_DATABASE_URL / alembic.ini's url."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import engine_from_config, pool

from facesearch.gallery.store import Base

config = context.config
target_metadata = Base.metadata


def run(connection) -> None:  # noqa: ANN001
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite can only ALTER through table copies
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
elif context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    url = os.environ.get("FACESEARCH_DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    engine = engine_from_config({"sqlalchemy.url": url}, prefix="sqlalchemy.", poolclass=pool.NullPool)
    with engine.connect() as conn:
        run(conn)
