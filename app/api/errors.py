"""Every error the service can raise, mapped to a status code and a JSON body in one place.

Routes raise; the handlers here answer. /predict and the other own routes answer `{"detail": ...}` as FastAPI
words it; the TensorFlow Serving and Open Inference Protocol routes answer `{"error": ...}`, which those protocols'
clients read."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.schemas import ErrorBody
from app.batching import (
    EngineStoppedError,
    InferenceError,
    JobTooLargeError,
    QueueFullError,
    RequestTimeoutError,
)
from app.content_encoding import EncodingError, InflatedTooLargeError
from app.imaging import (
    EmptyImageError,
    ImageError,
    ImageTooLargeError,
    UndecodableImageError,
    UnsupportedImageError,
)
from app.model import ModelNotFoundError
from app.tensors import TensorError
from app.uploads import ClientGoneError, MalformedFormError, MissingFormFieldError, UploadTooLargeError
from app.versions import NoVersionReadyError

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "1"
PROTOCOL_PREFIXES = ("/v1/", "/v2/")  # TensorFlow Serving's and the Open Inference Protocol's routes

STATUS_BY_ERROR: dict[type[Exception], int] = {
    EmptyImageError: 400,
    UndecodableImageError: 400,
    ImageTooLargeError: 413,
    UploadTooLargeError: 413,
    UnsupportedImageError: 415,
    MalformedFormError: 400,
    ClientGoneError: 400,  # nobody reads it: the client is gone, or the body limit has answered 413 already
    MissingFormFieldError: 422,
    TensorError: 400,
    EncodingError: 400,
    InflatedTooLargeError: 413,
    ModelNotFoundError: 404,
    NoVersionReadyError: 503,
    JobTooLargeError: 413,
    QueueFullError: 503,
    RequestTimeoutError: 503,
    EngineStoppedError: 503,
    InferenceError: 500,
}


def status_for(error: Exception) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[kind]
    return 500


def error_response(status: int, message: str, key: str = "detail") -> JSONResponse:
    """The JSON error body: `{"detail": ...}` as FastAPI words it, or `{"error": ...}` for the serving protocols."""
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if status == 503 else None
    return JSONResponse({key: message}, status_code=status, headers=headers)


def error_key(path: str) -> str:
    return "error" if path.startswith(PROTOCOL_PREFIXES) else "detail"


async def known_error(request: Request, error: Exception) -> JSONResponse:
    status = status_for(error)
    if status >= 500:
        log.warning("%s %s failed with %d: %s", request.method, request.url.path, status, error)
    return error_response(status, str(error), error_key(request.url.path))


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


async def http_error(request: Request, error: Exception) -> JSONResponse:
    """Routing's own errors (404 no such path, 405 with its Allow header), worded as the path's protocol words them."""
    assert isinstance(error, StarletteHTTPException)
    body = {error_key(request.url.path): error.detail}
    return JSONResponse(body, status_code=error.status_code, headers=error.headers)


async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal error; the service logged the details", error_key(request.url.path))


def install_error_handlers(app: FastAPI) -> None:
    for kind in (*STATUS_BY_ERROR, ImageError):
        app.add_exception_handler(kind, known_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)


def error_docs(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI `responses=` entries for the given statuses, all with the ErrorBody schema."""
    meaning = {
        400: "Empty, truncated or undecodable image data, or no digit in it.",
        413: "Upload over the size limit, image dimensions over the pixel limit, a JPEG of more scans than the limit, "
        "or more images than the queue holds.",
        415: "Not a supported raster image (decided from the bytes).",
        422: "Missing or misnamed form field.",
        500: "The model call failed; the service keeps serving.",
        404: "The version or label named is not loaded.",
        503: "No version serves yet, queue full, waited over REQUEST_TIMEOUT_SECONDS, or shutting down; retry after "
        "the Retry-After header's seconds.",
    }
    return {status: {"model": ErrorBody, "description": meaning[status]} for status in statuses}
