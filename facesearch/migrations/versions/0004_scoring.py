"""The gallery remembers its scoring rule (facesearch.gallery.scoring): ``nearest`` (the HW2P2 rule,
what every gallery did before) or ``mean`` (each person's template). Its threshold is tuned
under it, so it is a gallery setting, not a per-query option.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gallery") as batch:
        batch.add_column(sa.Column("scoring", sa.String(16), nullable=False, server_default="nearest"))


def downgrade() -> None:
    with op.batch_alter_table("gallery") as batch:
        batch.drop_column("scoring")
