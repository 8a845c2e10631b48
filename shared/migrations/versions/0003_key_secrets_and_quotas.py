"""per-key webhook secrets and quota overrides; job sizes past 2 GiB

Columns are only added (no constraint, no table copy), so SQLite alters the table
in place. `job.size_bytes` becomes BIGINT where the type matters (PostgreSQL's
INTEGER stops at 2 GiB, the default upload limit); SQLite's INTEGER is 64-bit
already and its ALTER would copy the table, so it is left as is there.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 08:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _key_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("webhook_secret", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("quota_audio_hours", sa.Float(), nullable=True),
        sa.Column("quota_storage_gb", sa.Float(), nullable=True),
    ]


def _size_type(to: sa.types.TypeEngine[int], from_: sa.types.TypeEngine[int]) -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("job", "size_bytes", type_=to, existing_type=from_, nullable=False)


def upgrade() -> None:
    for column in _key_columns():
        op.add_column("apikey", column)
    _size_type(sa.BigInteger(), sa.Integer())


def downgrade() -> None:
    _size_type(sa.Integer(), sa.BigInteger())
    for column in reversed(_key_columns()):
        op.drop_column("apikey", column.name)
