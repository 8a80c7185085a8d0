"""Every error the service can raise, mapped to a status code and a JSON body in one place."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.api.schemas import ErrorBody
from app.batching import EngineStoppedError, InferenceError, JobTooLargeError, QueueFullError
from app.imaging import (
    EmptyImageError,
    ImageError,
    ImageTooLargeError,
    UndecodableImageError,
    UnsupportedImageError,
)
from app.uploads import ClientGoneError, MalformedFormError, MissingFormFieldError, UploadTooLargeError

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "1"

STATUS_BY_ERROR: dict[type[Exception], int] = {
    EmptyImageError: 400,
    UndecodableImageError: 400,
    ImageTooLargeError: 413,
    UploadTooLargeError: 413,
    UnsupportedImageError: 415,
    MalformedFormError: 400,
    ClientGoneError: 400,  # nobody reads it: the client is gone, or the body limit has answered 413 already
    MissingFormFieldError: 422,
    JobTooLargeError: 413,
    QueueFullError: 503,
    EngineStoppedError: 503,
    InferenceError: 500,
}


def status_for(error: Exception) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[kind]
    return 500


def error_response(status: int, detail: str) -> JSONResponse:
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if status == 503 else None
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


async def known_error(_: Request, error: Exception) -> JSONResponse:
    return error_response(status_for(error), str(error))


def describe_validation(error: RequestValidationError) -> str:
    """One sentence per problem, e.g. "body.file: Field required" -> "missing form field 'file' ..."."""
    parts = []
    for problem in error.errors():
        location = ".".join(str(part) for part in problem.get("loc", ()))
        if problem.get("type") == "missing" and location.startswith("body."):
            field = location.removeprefix("body.")
            parts.append(f"missing form field '{field}': send the image as multipart/form-data field '{field}'")
        else:
            parts.append(f"{location}: {problem.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


async def validation_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    return JSONResponse({"detail": describe_validation(error), "errors": error.errors()}, status_code=422)


async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal error; the service logged the details")


def install_error_handlers(app: FastAPI) -> None:
    for kind in (*STATUS_BY_ERROR, ImageError):
        app.add_exception_handler(kind, known_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected_error)


def error_docs(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI `responses=` entries for the given statuses, all with the ErrorBody schema."""
    meaning = {
        400: "Empty, truncated or undecodable image data, or no digit in it.",
        413: "Upload over the size limit, image dimensions over the pixel limit, or more images than the queue holds.",
        415: "Not a supported raster image (decided from the bytes).",
        422: "Missing or misnamed form field.",
        500: "The model call failed; the service keeps serving.",
        503: "Queue full or shutting down; retry after the Retry-After header's seconds.",
    }
    return {status: {"model": ErrorBody, "description": meaning[status]} for status in statuses}
