"""GET /: the draw-a-digit page, and its script and stylesheet under /static/. Hidden from the OpenAPI schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

router = APIRouter(include_in_schema=False)

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

# The page loads nothing from other hosts; the policy makes the browser enforce that (and blocks injected scripts).
# img-src allows data: for the 28x28 image the API returns and blob: for previews.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",  # revalidate, so a new release's page is picked up at once
}


class Assets(StaticFiles):
    """Starlette's static files (which keep every path inside STATIC_DIR), with the page's headers."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.update(HEADERS)
        return response


@router.get("/")
async def page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers=HEADERS)
