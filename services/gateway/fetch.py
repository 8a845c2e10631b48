"""`url` instead of `file`: the gateway downloads the media itself, then probes it as an upload.

Only http(s); every hop (the URL and each redirect) is resolved and checked against
private, loopback and link-local ranges before any connection (shared.netguard);
the body is counted as it streams into the spool against the smaller of
`VTX_MAX_UPLOAD_MB` and the storage the caller has left (services.gateway.quotas), and
the whole download must end within `VTX_URL_TIMEOUT_S`. FFmpeg never sees the URL:
it only ever opens the spooled file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

import anyio
import httpx

from services.gateway.problems import InvalidField, TooLarge
from services.gateway.uploads import clean_filename, spool_file
from shared import netguard
from shared.config import Settings
from shared.files import remove

REDIRECTS = (301, 302, 303, 307, 308)


def _refused(message: str) -> InvalidField:
    return InvalidField(f"The URL cannot be fetched: {message}", param="url")


def filename_of(url: httpx.URL) -> str | None:
    return clean_filename(PurePosixPath(unquote(url.path)).name)


async def download(
    url: str, settings: Settings, max_bytes: int, too_big: TooLarge
) -> tuple[Path, int, str | None]:
    """Fetch `url` into the spool: (path, size, file name); the caller owns the file.

    `too_big` is raised as soon as the body (declared or received) passes `max_bytes`.
    """
    try:
        current = netguard.check_url(url)
    except netguard.Refused as exc:
        raise _refused(str(exc)) from exc
    allow = netguard.allowed_networks(settings)
    path = await anyio.to_thread.run_sync(spool_file, settings.uploads_dir, "url-")
    try:
        with anyio.fail_after(settings.url_timeout_s):
            size = await _follow(current, allow, path, settings, _Cap(max_bytes, too_big))
    except TimeoutError as exc:
        await remove(path)
        raise _refused(f"it took longer than {settings.url_timeout_s:g} s.") from exc
    except netguard.Refused as exc:
        await remove(path)
        raise _refused(str(exc)) from exc
    except httpx.HTTPError as exc:
        await remove(path)
        raise _refused(f"{type(exc).__name__}: {exc}") from exc
    except BaseException:
        await remove(path)
        raise
    return path, size, filename_of(current)


@dataclass(frozen=True)
class _Cap:
    max_bytes: int
    too_big: TooLarge


async def _follow(
    url: httpx.URL, allow: list[netguard.Network], path: Path, settings: Settings, cap: _Cap
) -> int:
    async with netguard.client(settings.url_timeout_s) as http:
        for _ in range(settings.url_max_redirects + 1):
            async with netguard.pinned(http, "GET", url, allow) as response:
                if response.status_code in REDIRECTS and "location" in response.headers:
                    url = netguard.check_url(str(url.join(response.headers["location"])))
                    continue
                if response.status_code != 200:
                    raise netguard.Refused(f"the server answered {response.status_code}.")
                return await _save(response, path, cap)
    raise netguard.Refused(f"more than {settings.url_max_redirects} redirects.")


async def _save(response: httpx.Response, path: Path, cap: _Cap) -> int:
    declared = response.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared[:20]) > cap.max_bytes:
        raise cap.too_big
    size = 0
    async with await anyio.open_file(path, "wb") as out:
        async for part in response.aiter_bytes():
            size += len(part)
            if size > cap.max_bytes:
                raise cap.too_big
            await out.write(part)
    return size
