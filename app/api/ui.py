"""GET /: the draw-a-digit page, and its script and stylesheet under /static/. Hidden from the OpenAPI schema."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

router = APIRouter(include_in_schema=False)

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css"}
STATIC_FILES = {path.name: path for path in STATIC_DIR.iterdir() if path.suffix in MEDIA_TYPES}

# The page loads nothing from other hosts; the policy makes the browser enforce that (and blocks injected scripts).
# img-src allows data: for the 28x28 image the API returns and blob: for previews.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",  # revalidate, so a new release's page is picked up at once
}


def static_file(name: str) -> FileResponse:
    """A file from app/static by exact name: the set is fixed at start-up, so no path ever reaches the filesystem
    from the URL."""
    path = STATIC_FILES.get(name)
    if path is None:
        raise HTTPException(status_code=404, detail=f"no static file '{name[:80]}'")
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=HEADERS)


@router.get("/")
async def page() -> FileResponse:
    return static_file("index.html")


@router.get("/static/{name}")
async def asset(name: str) -> FileResponse:
    return static_file(name)
