"""What the TensorFlow Serving and Open Inference Protocol routers share: which model a URL names, reading a JSON
body, and answering errors with the `{"error": "..."}` body both protocols use (not /predict's `{"detail": ...}`)."""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.api.errors import RETRY_AFTER_SECONDS, STATUS_BY_ERROR, status_for
from app.imaging import ImageError
from app.service import Service
from app.tensors import RequestTooLargeError, TensorError

log = logging.getLogger(__name__)


class ModelNotFoundError(LookupError):
    """The URL names a model or version this server does not serve."""


# The errors a protocol route answers itself; anything else is a bug and goes to the app's 500 handler.
HANDLED: tuple[type[Exception], ...] = (TensorError, ModelNotFoundError, ImageError, *STATUS_BY_ERROR)


def check_target(service: Service, name: str, version: str | None) -> None:
    """This server serves one model name and one loaded version; any other is not found."""
    served = service.model.info.name
    if name != served:
        raise ModelNotFoundError(f"model '{name}' is not served here; the only model is '{served}'")
    if version is not None and version != str(service.version):
        raise ModelNotFoundError(
            f"version '{version}' of model '{name}' is not loaded; the loaded version is {service.version}"
        )


def protocol_status(error: Exception) -> int:
    if isinstance(error, RequestTooLargeError):
        return 413
    if isinstance(error, TensorError):
        return 400
    if isinstance(error, ModelNotFoundError):
        return 404
    return status_for(error)


def error_response(error: Exception) -> JSONResponse:
    status = protocol_status(error)
    if status >= 500:
        log.warning("protocol request failed with %d: %s", status, error)
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if status == 503 else None
    return JSONResponse({"error": str(error)}, status_code=status, headers=headers)


def parse_json(data: bytes) -> Any:
    """The body as JSON; malformed JSON is the client's error.

    orjson reads a tensor of thousands of images several times faster than the standard library; what it refuses
    goes to the standard library, which also takes TensorFlow Serving's NaN/Infinity tokens and words the error."""
    if not data.strip():
        raise TensorError("the request body is empty; send a JSON object")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise TensorError(f"malformed JSON: {error}") from None


def json_bytes(value: Any) -> bytes:
    """`value` as JSON, NumPy arrays included, written by orjson: answers with thousands of rows cost a fraction of
    what the standard library takes to write them."""
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)


class ErrorMessage(BaseModel):
    error: str


def request_body_doc(model: type[BaseModel], *media_types: str) -> dict[str, Any]:
    """`openapi_extra` documenting a body the route parses itself (so bad bodies get the protocol's error body,
    not FastAPI's 422). Nested models are inlined: a `$defs` reference would not resolve inside the OpenAPI file."""
    schema = inline_refs(model.model_json_schema())
    content = {media: {"schema": schema} for media in media_types or ("application/json",)}
    return {"requestBody": {"required": True, "content": content}}


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(dict(definitions[node["$ref"].rsplit("/", 1)[-1]]))
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    return dict(resolve(schema))


def error_docs(*statuses: int) -> dict[int | str, dict[str, Any]]:
    meaning = {
        400: "Malformed JSON or base64, wrong shape or datatype, data not matching the shape, undecodable image.",
        404: "Unknown model name or version.",
        413: "A body over MAX_TENSOR_BYTES, more images than the queue holds, or an image over the size limits.",
        415: "An encoded image that is not a supported raster format.",
        500: "The model call failed; the service keeps serving.",
        503: "Not ready, queue full or shutting down; retry after the Retry-After header's seconds.",
    }
    return {status: {"model": ErrorMessage, "description": meaning[status]} for status in statuses}
