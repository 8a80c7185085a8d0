"""HEAD on any GET route (`curl -I`, uptime monitors): answered as the GET is, headers only.

FastAPI routes answer only the methods they declare, so without this a HEAD on /healthz would be a 405. The server
writes no body for a HEAD request whatever the application sends, as it does for Starlette's own GET routes."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class HeadAsGetMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "HEAD":
            scope = {**scope, "method": "GET"}
        await self.app(scope, receive, send)
