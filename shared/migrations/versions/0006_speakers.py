"""speakers: what a job asks about its speakers, each chunk's channel, and diarizations

Columns are only added (SQLite alters the tables in place) and one table is created.
Jobs made before this revision asked for no speakers.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 14:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("job", sa.Column("speakers", AutoString(length=8), nullable=True))
    op.add_column("job", sa.Column("min_speakers", sa.Integer(), nullable=True))
    op.add_column("job", sa.Column("max_speakers", sa.Integer(), nullable=True))
    op.add_column("job", sa.Column("speaker_route", sa.String(length=16), nullable=True))
    op.add_column("job", sa.Column("speaker_names", sa.JSON(), nullable=True))
    op.add_column("chunk", sa.Column("channel", sa.Integer(), nullable=True))
    op.create_table(
        "diarization",
        sa.Column("job_id", AutoString(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", AutoString(length=64), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("turns", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id"),
    )


def downgrade() -> None:
    op.drop_table("diarization")
    op.drop_column("chunk", "channel")
    for column in ("speaker_names", "speaker_route", "max_speakers", "min_speakers", "speakers"):
        op.drop_column("job", column)
