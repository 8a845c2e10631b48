"""hotwords: the words a job asks the decoder to favour

A nullable column only, so SQLite alters the table in place; jobs made before this
revision have none.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 12:05:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("job", sa.Column("hotwords", AutoString(length=500), nullable=True))


def downgrade() -> None:
    op.drop_column("job", "hotwords")
