"""`create_app()`: wires settings, the model repository and routers; `lifespan` starts watching the models."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app.api import health, metrics, predict, tfserving, ui, v2
from app.api.errors import PROTOCOL_PREFIXES, error_key, install_error_handlers
from app.auth import ApiKeyMiddleware, document_api_keys
from app.body_limit import BodyLimit, BodyLimitMiddleware
from app.disconnect import CancelOnDisconnectMiddleware
from app.drain import Drain
from app.head_requests import HeadAsGetMiddleware
from app.metrics import Metrics, MetricsMiddleware
from app.reload_signal import reload_on_hangup
from app.request_log import RequestLogMiddleware
from app.service import Service
from app.settings import Settings, get_settings

log = logging.getLogger("app")

MULTIPART_SLACK = 64 * 1024  # room for the multipart boundary and part headers around one file

DESCRIPTION = """
Handwritten-digit recognition: upload an image of a digit, get the ten class probabilities.

Any PNG, JPEG, GIF, BMP, TIFF or WebP works: photos of a digit on paper, drawings on a transparent canvas, or
MNIST's own 28x28 format. Uploads are normalised the way MNIST was made before the model sees them.
"""


def package_version() -> str:
    try:
        return version("mnist-service")
    except PackageNotFoundError:
        return "0.0.0+local"


def body_limits(settings: Settings) -> Callable[[str], BodyLimit]:
    single = BodyLimit(settings.max_upload_bytes + MULTIPART_SLACK, "MAX_UPLOAD_BYTES")
    batch = BodyLimit(settings.max_batch_bytes, "MAX_BATCH_BYTES")
    tensors = BodyLimit(settings.max_tensor_bytes, "MAX_TENSOR_BYTES")

    def limit_for(path: str) -> BodyLimit:
        if path.startswith(PROTOCOL_PREFIXES):
            return tensors
        return batch if path.endswith("/batch") else single

    return limit_for


def mark_draining(app: FastAPI) -> None:
    app.state.draining = True
    if app.state.service is not None:
        app.state.service.draining = True


def add_middleware(app: FastAPI, settings: Settings) -> None:
    """The middleware, innermost first (each added one wraps those before it)."""
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(BodyLimitMiddleware, limit_for=body_limits(settings), error_key=error_key)
    app.add_middleware(CancelOnDisconnectMiddleware)
    keys = settings.api_key_list()
    if keys:
        app.add_middleware(ApiKeyMiddleware, keys=keys, metrics_public=settings.metrics_public, error_key=error_key)
        document_api_keys(app, settings.metrics_public)
    origins = settings.cors_origin_list()
    if origins:  # outside the key check: a browser's preflight carries no key, and a 401 must be readable
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    app.state.metrics = Metrics()
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)  # counts 401s and 413s too
    app.add_middleware(RequestLogMiddleware)  # outermost: every line about a request carries its id


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        Drain(settings.drain_seconds, begin=lambda: mark_draining(app)).install()
        # Returns at once: the server listens (and /healthz answers) while the first version loads in the
        # background; readiness says 'loading', then 'ready', or 'unavailable' with the reason when none can load.
        service = Service.start(settings)
        reload_on_hangup(service.repository.poll_now)
        app.state.metrics.attach(service)
        app.state.service = service
        yield
        await service.stop()
        app.state.metrics.close()

    app = FastAPI(
        title="MNIST digit recognition",
        version=package_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        # The hot routes sit on the app's own router: FastAPI serves an included router's routes through an extra
        # routing layer per request (docs/benchmark.md has the cost).
        routes=predict.router.routes,
    )
    app.state.service = None
    app.state.draining = False
    add_middleware(app, settings)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(ui.router)
    app.mount("/static", ui.Assets(directory=ui.STATIC_DIR), name="static")
    app.include_router(tfserving.router)
    app.include_router(v2.router)
    app.include_router(metrics.router)
    return app
