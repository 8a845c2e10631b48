"""voice activity: a job's `vad` option and each chunk's speech windows

Columns are only added, so SQLite alters the tables in place. Jobs made before
this revision keep their behaviour of old: `vad` false, their chunks without windows.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 11:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("job", sa.Column("vad", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("chunk", sa.Column("speech", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("chunk", "speech")
    op.drop_column("job", "vad")
