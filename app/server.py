"""`mnist-serve` / `make serve`: run the app under uvicorn with HOST, PORT, WORKERS and LOG_LEVEL."""

from __future__ import annotations

import copy
import gc
import os
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from app.settings import get_settings


def logging_config(level: str) -> dict[str, Any]:
    """uvicorn's own logging set-up plus the app's loggers. uvicorn applies it in every worker process; a
    logging.basicConfig() made here would not reach workers it spawns when WORKERS > 1."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["app"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter is not for operators
    # The app's imports too run without the cyclic collector (faster start); the lifespan turns it back on once
    # the model is loaded (app.service.collector_paused).
    gc.disable()
    settings = get_settings()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level.lower(),
        log_config=logging_config(settings.log_level),
        timeout_graceful_shutdown=30,
    )


if __name__ == "__main__":
    main()
