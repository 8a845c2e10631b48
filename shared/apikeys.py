"""API keys: made here, shown once, stored only as a SHA-256 hash.

Keys are 32 random bytes, so a plain SHA-256 (no slow KDF) is enough: nobody can
guess a preimage, and a lookup stays one indexed query per request. Each key gets
its own webhook secret at creation, kept in clear because the server signs with it.
Once any key has been made, revoked or not, `VTX_AUTH=auto` keeps requiring keys:
revoking the last one must not reopen the API to everyone.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.models import ApiKey, utcnow

PREFIX = "vtx_"
WEBHOOK_PREFIX = "whsec_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class NewKey:
    row: ApiKey  # row.webhook_secret is shown beside the key, once
    key: str  # the only time the key itself exists outside its owner's hands


async def create(
    session: AsyncSession,
    name: str,
    audio_hours: float | None = None,
    storage_gb: float | None = None,
) -> NewKey:
    """A new key with its own webhook secret; quotas None follow the server's settings."""
    key = PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        name=name[:100],
        prefix=key[:12],
        key_hash=hash_key(key),
        webhook_secret=WEBHOOK_PREFIX + secrets.token_urlsafe(32),
        quota_audio_hours=audio_hours,
        quota_storage_gb=storage_gb,
    )
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


async def active_id(session: AsyncSession, key_id: str) -> ApiKey | None:
    """The key with this id, unless it was revoked (what a media token's holder needs)."""
    row = await session.get(ApiKey, key_id)
    return row if row is not None and row.revoked_at is None else None


async def any_active(session: AsyncSession) -> bool:
    statement = select(ApiKey.id).where(col(ApiKey.revoked_at).is_(None)).limit(1)
    return (await session.exec(statement)).first() is not None


async def any_made(session: AsyncSession) -> bool:
    """Whether a key was ever created; revoked keys count, so revoking cannot unlock."""
    return (await session.exec(select(ApiKey.id).limit(1))).first() is not None


async def required(session: AsyncSession, mode: str) -> bool:
    """Whether requests need a key under `VTX_AUTH=mode` (auto: once any key was made)."""
    if mode != "auto":
        return mode == "required"
    return await any_made(session)
