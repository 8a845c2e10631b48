"""The web page: `GET /` and its few static files, shipped in the package (no build step).

Only the files named in `ASSETS` are served, from this package's `static/` folder;
nothing here is in the OpenAPI document. The script is ES modules: index.html loads
`main.js` with `type="module"`, which imports the others by relative URL; module scripts
from the page's own origin are what `script-src 'self'` allows, so the CSP needs nothing
more (no inline script, no eval).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parents[2] / "static"

JAVASCRIPT = "text/javascript; charset=utf-8"
MODULES = (
    "main.js",
    "api.js",
    "dom.js",
    "format.js",
    "jobs.js",
    "search.js",
    "speakers.js",
    "viewer.js",
)
ASSETS: dict[str, str] = {"app.css": "text/css; charset=utf-8"} | dict.fromkeys(MODULES, JAVASCRIPT)

# The page talks only to its own origin; media may also be a blob: (fetched with a key).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(
        STATIC_DIR / "index.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS
    )


@router.get("/static/{name}")
async def asset(name: str) -> FileResponse:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise HTTPException(404, "Not Found")
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
    return FileResponse(STATIC_DIR / name, media_type=media_type, headers=headers)
