"""API keys: made here, shown once, stored only as a SHA-256 hash.

Keys are 32 random bytes, so a plain SHA-256 (no slow KDF) is enough: nobody can
guess a preimage, and a lookup stays one indexed query per request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.models import ApiKey, utcnow

__all__ = ["ApiKey", "NewKey", "active", "any_active", "create", "hash_key", "listing", "revoke"]

PREFIX = "vtx_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class NewKey:
    row: ApiKey
    key: str  # the only time the key itself exists outside its owner's hands


async def create(session: AsyncSession, name: str) -> NewKey:
    key = PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name[:100], prefix=key[:12], key_hash=hash_key(key))
    session.add(row)
    await session.commit()
    await session.refresh(row)
    return NewKey(row, key)


async def listing(session: AsyncSession) -> list[ApiKey]:
    return list(await session.exec(select(ApiKey).order_by(col(ApiKey.created_at))))


async def revoke(session: AsyncSession, id_or_prefix: str) -> list[ApiKey]:
    """Revoke the key with this id or key prefix; returns what was revoked (maybe nothing)."""
    rows = list(
        await session.exec(
            select(ApiKey)
            .where((col(ApiKey.id) == id_or_prefix) | (col(ApiKey.prefix) == id_or_prefix))
            .where(col(ApiKey.revoked_at).is_(None))
        )
    )
    if len(rows) > 1:  # an ambiguous prefix revokes nothing
        raise ValueError(f"'{id_or_prefix}' names {len(rows)} keys; use the key's id.")
    for row in rows:
        row.revoked_at = utcnow()
        session.add(row)
    await session.commit()
    return rows


async def active(session: AsyncSession, key: str) -> ApiKey | None:
    row = (await session.exec(select(ApiKey).where(col(ApiKey.key_hash) == hash_key(key)))).first()
    return row if row is not None and row.revoked_at is None else None


async def any_active(session: AsyncSession) -> bool:
    statement = select(func.count()).select_from(ApiKey).where(col(ApiKey.revoked_at).is_(None))
    return int((await session.exec(statement)).one()) > 0
