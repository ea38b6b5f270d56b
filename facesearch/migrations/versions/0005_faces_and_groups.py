"""Faces as first-class rows: a photo may give several faces (``face_number``, largest first),
a face need not have a person (``identity_id`` NULL: unnamed), and each keeps where it was
found (``box``, ``landmarks`` as JSON, ``detection_score``), how usable it is (``quality``)
and the group of unnamed faces it was put in (``groups``). A photo's content hash is unique
together with its face number, no longer alone.

The faces table is rebuilt on SQLite (batch mode), keeping its AUTOINCREMENT sequence: a face
id is never reused, which the index's repair relies on.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UNNAMED_UNIQUE = {"uq": "uq_%(table_name)s_%(column_0_name)s"}  # names the inline UNIQUE of 0001 on SQLite


def _columns() -> list[sa.Column]:
    return [
        sa.Column("face_number", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("box", sa.Text()),
        sa.Column("landmarks", sa.Text()),
        sa.Column("detection_score", sa.Float()),
        sa.Column("quality", sa.Float()),
        sa.Column("group_id", sa.Integer()),
    ]


def upgrade() -> None:
    op.create_table(
        "groups",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime(timezone=True)),
        sqlite_autoincrement=True,
    )
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        sequence = bind.execute(sa.text("SELECT seq FROM sqlite_sequence WHERE name = 'faces'")).scalar()
        with op.batch_alter_table("faces", recreate="always", naming_convention=UNNAMED_UNIQUE,
                                  table_kwargs={"sqlite_autoincrement": True}) as batch:
            batch.drop_constraint("uq_faces_content_hash", type_="unique")
            batch.alter_column("identity_id", existing_type=sa.Integer(), nullable=True)
            for column in _columns():
                batch.add_column(column)
            batch.create_unique_constraint("uq_faces_photo_face", ["content_hash", "face_number"])
            batch.create_foreign_key("fk_faces_group", "groups", ["group_id"], ["id"], ondelete="SET NULL")
        if sequence is not None:
            bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = 'faces'"))
            bind.execute(sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES ('faces', :seq)"), {"seq": sequence})
    else:
        unique = next(
            c["name"] for c in sa.inspect(bind).get_unique_constraints("faces") if c["column_names"] == ["content_hash"]
        )
        op.drop_constraint(unique, "faces", type_="unique")
        op.alter_column("faces", "identity_id", existing_type=sa.Integer(), nullable=True)
        for column in _columns():
            op.add_column("faces", column)
        op.create_unique_constraint("uq_faces_photo_face", "faces", ["content_hash", "face_number"])
        op.create_foreign_key("fk_faces_group", "faces", "groups", ["group_id"], ["id"], ondelete="SET NULL")
    op.create_index("ix_faces_group_id", "faces", ["group_id"])


def downgrade() -> None:
    raise NotImplementedError("faces without a person cannot go back to a schema where every face has one")
