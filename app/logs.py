"""Log lines an operator can search: each names the request it is about, and LOG_FORMAT=json writes one JSON object
per line for a log collector. The request's context lives in a contextvar, so any logger called while a request is
handled (the app's, uvicorn's, a library's) gets its id without being passed it."""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass
class RequestContext:
    """What the access line reports beyond the HTTP exchange; the service fills in what it learns."""

    request_id: str
    images: int = 0
    model_version: int | None = None


CURRENT: ContextVar[RequestContext | None] = ContextVar("request_context", default=None)

# The structured fields a log call may pass with `extra=`; only these reach a JSON line, so a stray attribute can
# never carry an image or a key into the logs.
FIELDS = ("method", "route", "status", "latency_ms", "model_version", "images", "client")
NO_REQUEST = "-"


def count_images(count: int) -> None:
    """Adds `count` images to the current request's access line (a no-op outside a request)."""
    context = CURRENT.get()
    if context is not None:
        context.images += count


def note_version(version: int) -> None:
    """Names the model version that answers the current request on its access line (a no-op outside a request)."""
    context = CURRENT.get()
    if context is not None:
        context.model_version = version


class RequestIdFilter(logging.Filter):
    """Stamps every record with the id of the request being handled, or '-'."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = CURRENT.get()
        record.request_id = context.request_id if context is not None else NO_REQUEST
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, pid, message, request_id and the known
    fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,  # which worker, with WORKERS > 1
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", NO_REQUEST)
        if request_id != NO_REQUEST:
            line["request_id"] = request_id
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s"


def logging_config(level: str, log_format: str) -> dict[str, Any]:
    """The dictConfig for uvicorn's and the app's loggers. uvicorn applies it in every worker process it starts (a
    logging.basicConfig() in the parent would not reach them)."""
    formatter: dict[str, Any] = (
        {"()": JsonFormatter} if log_format == "json" else {"format": TEXT_FORMAT, "datefmt": "%Y-%m-%dT%H:%M:%S"}
    )
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "line",
        "filters": ["request_id"],
        "stream": "ext://sys.stderr",
    }
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"line": formatter},
        "handlers": {"default": handler},
        "loggers": {
            name: {"handlers": ["default"], "level": level, "propagate": False}
            for name in ("uvicorn", "uvicorn.error", "app")
        },
    }
