"""What the TensorFlow Serving and Open Inference Protocol routers share: which model a URL names, reading
(compressed or not) and writing JSON bodies, and the OpenAPI entries for their bodies and errors."""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from pydantic import BaseModel
from starlette.requests import ClientDisconnect

from app.content_encoding import decompress
from app.model import ModelNotFoundError
from app.service import Service, ServiceDep
from app.tensors import TensorError
from app.uploads import ClientGoneError
from app.versions import LoadedVersion

log = logging.getLogger(__name__)


def check_name(service: Service, name: str) -> None:
    """This server serves one model name; any other is not found."""
    served = service.repository.name
    if name != served:
        raise ModelNotFoundError(f"model '{name}' is not served here; the only model is '{served}'")


def target(service: Service, name: str, version: str | None = None, label: str | None = None) -> LoadedVersion:
    """The loaded version a URL names (by number or label; the default when neither), or the protocol's 404."""
    check_name(service, name)
    return service.route(version, label)


async def served_model(model_name: str, service: ServiceDep) -> Service:
    """The Service, for a URL naming the served model (whatever its versions' states); the protocol's 404 else."""
    check_name(service, model_name)
    return service


async def default_version(model_name: str, service: ServiceDep) -> LoadedVersion:
    return target(service, model_name)


async def served_version(model_name: str, version: str, service: ServiceDep) -> LoadedVersion:
    return target(service, model_name, version)


async def labelled_version(model_name: str, label: str, service: ServiceDep) -> LoadedVersion:
    return target(service, model_name, label=label)


ServedModel = Annotated[Service, Depends(served_model)]
DefaultVersion = Annotated[LoadedVersion, Depends(default_version)]
ServedVersion = Annotated[LoadedVersion, Depends(served_version)]
LabelledVersion = Annotated[LoadedVersion, Depends(labelled_version)]
VERSION_HEADER = "Model-Version"  # names the version that computed an answer whose body has no place for it


async def tensor_body(request: Request, service: Service) -> bytes:
    """The request's body, inflated if it came compressed, within MAX_TENSOR_BYTES."""
    encoding = request.headers.get("content-encoding")
    try:
        body = await request.body()
    except ClientDisconnect:
        raise ClientGoneError("the client disconnected before the request body was complete") from None
    return decompress(body, encoding, service.settings.max_tensor_bytes, "MAX_TENSOR_BYTES")


def parse_json(data: bytes) -> Any:
    """The body as JSON; malformed JSON is the client's error.

    orjson reads it, as the standard library's parser would limit a tensor of thousands of images; what orjson
    refuses goes to the standard library, which also takes TensorFlow Serving's NaN/Infinity tokens and words the
    error."""
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
    """`value` as JSON, NumPy arrays included, written by orjson: it writes NumPy rows directly and float32 values
    at their own precision, so an answer of thousands of rows is neither slow nor bloated (docs/benchmark.md)."""
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
        404: "Unknown model name, or a version or label that is not loaded.",
        413: "A body over MAX_TENSOR_BYTES, more images than the queue holds, or an image over the size limits.",
        415: "An encoded image that is not a supported raster format.",
        500: "The model call failed; the service keeps serving.",
        503: "No version serves yet, queue full, waited over REQUEST_TIMEOUT_SECONDS or shutting down; retry after "
        "the Retry-After header's seconds.",
    }
    return {status: {"model": ErrorMessage, "description": meaning[status]} for status in statuses}
