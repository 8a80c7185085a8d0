"""API keys: with API_KEYS or API_KEYS_FILE set, every route but the health probes and the drawing page's files
needs `Authorization: Bearer <key>` or `X-API-Key: <key>`; without a valid one the answer is 401.

Keys are compared in constant time (hmac.compare_digest, against every key, so the time says nothing about which
key or how much of it matched) and never logged."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from app.asgi import send_json

# Probes and the static page work without a key: orchestrators do not carry one, and the page asks the user for it.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/"})
OPEN_PREFIXES = ("/v2/health/", "/static/")
METRICS_PATH = "/metrics"
CHALLENGE = b'Bearer realm="mnist-service"'


def presented_key(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            return value
        if name == b"authorization":
            scheme, _, credentials = value.partition(b" ")
            if scheme.lower() == b"bearer":
                return credentials.strip()
    return None


class ApiKeyMiddleware:
    def __init__(
        self, app: ASGIApp, keys: Sequence[str], metrics_public: bool, error_key: Callable[[str], str]
    ) -> None:
        self.app = app
        self.keys = [key.encode() for key in keys]
        self.open_paths = OPEN_PATHS | {METRICS_PATH} if metrics_public else OPEN_PATHS
        self.error_key = error_key  # the JSON key of a path's error body

    def is_open(self, path: str) -> bool:
        return path in self.open_paths or path.startswith(OPEN_PREFIXES)

    def accepts(self, key: bytes | None) -> bool:
        if key is None:
            return False
        matched = False
        for known in self.keys:  # no early exit: every key is compared every time
            matched |= hmac.compare_digest(key, known)
        return matched

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.is_open(scope["path"]) or self.accepts(presented_key(scope)):
            await self.app(scope, receive, send)
            return
        message = "a valid API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
        await send_json(send, 401, {self.error_key(scope["path"]): message}, [(b"www-authenticate", CHALLENGE)])
