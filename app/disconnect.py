"""A request whose client goes away is stopped: no model work for nobody.

The server passes `http.disconnect` to the application when the connection is lost, but only to a caller of
`receive()`; a route waiting for the batching engine never calls it again once it has read the body. So this
middleware runs the request in a task of its own and, once the body is in, waits on `receive()` itself: if the
client leaves before the response is complete, the task is cancelled. Cancelling a request waiting for the engine
takes its images out of the queue (app.batching)."""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

CLIENT_CLOSED_REQUEST = 499  # what access logs and metrics record for a request its client abandoned (as nginx does)


class CancelOnDisconnectMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)  # no body to wait for, and nothing slow behind these routes
            return
        body_read = asyncio.Event()
        responded = False
        watcher: asyncio.Task[None] | None = None

        async def tracking_receive() -> Message:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_read.set()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal responded
            if message["type"] == "http.response.start":
                responded = True
            await send(message)

        handler = asyncio.ensure_future(self.app(scope, tracking_receive, tracking_send))

        async def watch() -> None:
            await body_read.wait()
            message = await receive()  # blocks until the connection is lost or the response is complete
            if message["type"] == "http.disconnect" and not responded and not handler.done():
                handler.cancel()

        watcher = asyncio.ensure_future(watch())
        try:
            await handler
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():  # this request itself is being cancelled: pass it on
                raise
            log.info("client went away before its answer; its work was dropped")
            await send_nothing_but_status(send)
        finally:
            watcher.cancel()


async def send_nothing_but_status(send: Send) -> None:
    """Tells the middleware outside (access log, metrics) that the client closed the request; the server writes
    nothing to a lost connection."""
    await send({"type": "http.response.start", "status": CLIENT_CLOSED_REQUEST, "headers": []})
    await send({"type": "http.response.body", "body": b""})
