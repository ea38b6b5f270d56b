"""The gallery chooses its search index: exact (flat) or approximate (IVF, HNSW).

The index is derived data, so its kind and search parameters live with the gallery in the
database: a rebuilt index comes back the same kind.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gallery") as batch:
        batch.add_column(sa.Column("index_kind", sa.String(16), nullable=False, server_default="flat"))
        batch.add_column(sa.Column("index_params", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("gallery") as batch:
        batch.drop_column("index_params")
        batch.drop_column("index_kind")
