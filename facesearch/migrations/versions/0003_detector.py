"""The gallery remembers the face detector its photos were enrolled with.

Faces found by another detector sit a little differently in their crops, so queries use the
enroll's detector choice unless told otherwise ("none" included: --no-detect). NULL: as the
encoder says (mtcnn when it detects).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gallery") as batch:
        batch.add_column(sa.Column("detector", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("gallery") as batch:
        batch.drop_column("detector")
