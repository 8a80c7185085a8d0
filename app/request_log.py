"""Request ids and the access log: every request gets an id (the client's X-Request-ID when it is sensible), the
response carries it back, and one access line per request reports it with the route, status, latency, model
version and image count."""

from __future__ import annotations

import logging
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.logs import CURRENT, RequestContext

log = logging.getLogger("app.access")

HEADER = b"x-request-id"
MAX_ID_LENGTH = 128
UNMATCHED = "unmatched"  # requests no route took: the raw path of a scan is not worth a field


def acceptable_id(value: bytes) -> bool:
    """At most MAX_ID_LENGTH printable ASCII characters: anything else could forge or flood log lines."""
    return 0 < len(value) <= MAX_ID_LENGTH and all(0x20 <= byte < 0x7F for byte in value)


def request_id_of(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == HEADER:
            return value.decode("ascii") if acceptable_id(value) else uuid.uuid4().hex
    return uuid.uuid4().hex


class RequestLogMiddleware:
    """Sets the request's context (its id, for every log line while it is handled), returns X-Request-ID and writes
    the access line. Outside every other middleware, so even a 401 or a 413 is logged with its id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        context = RequestContext(request_id_of(scope))
        token = CURRENT.set(context)
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering
        header = (HEADER, context.request_id.encode("ascii"))

        async def identified_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, identified_send)
        finally:
            self.write(scope, context, status, time.perf_counter() - started)
            CURRENT.reset(token)

    @staticmethod
    def write(scope: Scope, context: RequestContext, status: int, seconds: float) -> None:
        if not log.isEnabledFor(logging.INFO):  # LOG_LEVEL=warning: no access lines, and no cost for them
            return
        route = getattr(scope.get("route"), "path", None) or UNMATCHED
        version = context.model_version
        fields = {
            "method": scope["method"],
            "route": route,
            "status": status,
            "latency_ms": round(seconds * 1000, 3),
            "images": context.images,
            "model_version": version,
        }
        log.info("%s %s %d", scope["method"], route, status, extra=fields)
