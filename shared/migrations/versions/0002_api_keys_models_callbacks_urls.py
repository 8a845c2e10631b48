"""api keys, per-job model and options, callbacks and url ingestion

Columns are only added to `job` (no constraint, no table copy), so SQLite alters the
table in place: a batch copy would drop `job` and, with foreign keys on, cascade
into its chunks.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 11:30:20.731546
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AutoString = sqlmodel.sql.sqltypes.AutoString


def _job_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("owner_id", AutoString(length=32), nullable=True),
        sa.Column("model", AutoString(length=255), nullable=True),
        sa.Column("task", sa.String(length=16), nullable=False, server_default="transcribe"),
        sa.Column("prompt", AutoString(length=2000), nullable=True),
        sa.Column("temperature", sa.Float(), nullable=True),
        sa.Column("source_url", AutoString(length=2048), nullable=True),
        sa.Column("callback_url", AutoString(length=2048), nullable=True),
        sa.Column("callback_status", sa.String(length=16), nullable=True),
        sa.Column("callback_attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("callback_next_at", sa.DateTime(timezone=True), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "apikey",
        sa.Column("id", AutoString(length=32), nullable=False),
        sa.Column("name", AutoString(length=100), nullable=False),
        sa.Column("prefix", AutoString(length=16), nullable=False),
        sa.Column("key_hash", AutoString(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )
    op.create_table(
        "callbackdelivery",
        sa.Column("job_id", AutoString(length=32), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", AutoString(length=500), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "attempt"),
    )
    for column in _job_columns():
        op.add_column("job", column)
    op.create_index(op.f("ix_job_owner_id"), "job", ["owner_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_job_owner_id"), table_name="job")
    for column in reversed(_job_columns()):
        op.drop_column("job", column.name)
    op.drop_table("callbackdelivery")
    op.drop_table("apikey")
