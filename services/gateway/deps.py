"""Annotated dependencies: what a route may ask FastAPI for."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.config import Settings
from shared.runtime import Resources
from shared.service import resources_of


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


ResourcesDep = Annotated[Resources, Depends(resources_of)]
SettingsDep = Annotated[Settings, Depends(settings_of)]


async def session(res: ResourcesDep) -> AsyncIterator[AsyncSession]:
    async with res.sessions() as s:
        yield s


SessionDep = Annotated[AsyncSession, Depends(session)]
