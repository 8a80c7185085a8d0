"""API keys: with API_KEYS or API_KEYS_FILE set, every route but the health probes and the drawing page's files
needs `Authorization: Bearer <key>` or `X-API-Key: <key>`; without a valid one the answer is 401.

Keys are compared in constant time (hmac.compare_digest, against every key, so the time says nothing about which
key or how much of it matched) and never logged."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI
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


def is_open(path: str, metrics_public: bool) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES) or (metrics_public and path == METRICS_PATH)


class ApiKeyMiddleware:
    def __init__(
        self, app: ASGIApp, keys: Sequence[str], metrics_public: bool, error_key: Callable[[str], str]
    ) -> None:
        self.app = app
        self.keys = [key.encode() for key in keys]
        self.metrics_public = metrics_public
        self.error_key = error_key  # the JSON key of a path's error body

    def accepts(self, key: bytes | None) -> bool:
        if key is None:
            return False
        matched = False
        for known in self.keys:  # no early exit: every key is compared every time
            matched |= hmac.compare_digest(key, known)
        return matched

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_open(scope["path"], self.metrics_public) or self.accepts(presented_key(scope)):
            await self.app(scope, receive, send)
            return
        message = "a valid API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
        await send_json(send, 401, {self.error_key(scope["path"]): message}, [(b"www-authenticate", CHALLENGE)])


SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def document_api_keys(app: FastAPI, metrics_public: bool) -> None:
    """With keys required, the OpenAPI document says so: the two ways to send a key, and a 401 on every operation
    that needs one."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
            for path, operations in schema["paths"].items():
                if is_open(path, metrics_public):
                    continue
                for operation in operations.values():
                    operation["security"] = [{name: []} for name in SECURITY_SCHEMES]
                    operation["responses"]["401"] = {
                        "description": "No valid API key (see WWW-Authenticate).",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the schema
