"""A threshold set at a false-positive identification rate remembers the rate
(``threshold_fpir``) and how many people the gallery had then (``threshold_people``), so that
it follows the gallery: an enroll that changes the number of people by a tenth estimates it
again from the gallery's own photos, a change of scoring rule or encoder too. A threshold of
any other source has neither (NULL), as have galleries estimated before this revision.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gallery") as batch:
        batch.add_column(sa.Column("threshold_fpir", sa.Float, nullable=True))
        batch.add_column(sa.Column("threshold_people", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gallery") as batch:
        batch.drop_column("threshold_people")
        batch.drop_column("threshold_fpir")
