"""Run a reference server under uvicorn with the same options as `mnist-serve`, so only the app differs."""

from __future__ import annotations

import os

import uvicorn

from app.settings import get_settings


def serve(app: str) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    settings = get_settings()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=30,
    )
