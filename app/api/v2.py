"""The Open Inference Protocol (KServe V2 / Triton) over REST, with the binary tensor data extension.

Input: `images`, UINT8 or FP32 [N, 28, 28] raw pixels, or BYTES [N] of encoded image files (4-byte length prefixed
in binary data; base64 strings in JSON, since JSON strings cannot carry raw bytes). Outputs: `probabilities` FP32
[N, 10], `class` INT64 [N] and `is_digit` BOOL [N], and `digit_score` FP32 [N] from a version whose signature has
it. Outputs come back as JSON unless the request asks for binary (per output `binary_data`, or `binary_data_output`
for all), as tritonclient does by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from app.api.protocols import (
    DefaultVersion,
    ServedModel,
    ServedVersion,
    error_docs,
    json_bytes,
    parse_json,
    request_body_doc,
    target,
    tensor_body,
)
from app.contract import DIGIT_SCORE_NAME, IMAGE_SIDE, NUM_CLASSES, OUTPUT_NAME
from app.model import Predictions
from app.service import Service, ServiceDep, readiness_of
from app.tensors import Decoded, TensorError, binary_sizes, split_binary_body, to_images, v2_items
from app.versions import LoadedVersion

router = APIRouter(prefix="/v2", tags=["Open Inference Protocol (KServe V2)"])

HEADER_LENGTH = "Inference-Header-Content-Length"
PLATFORM = "tensorflow_savedmodel"
CLASS_OUTPUT = "class"
IS_DIGIT_OUTPUT = "is_digit"
EXTENSIONS = ["binary_tensor_data"]
T = TypeVar("T")


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class Liveness(BaseModel):
    live: bool


class ServerReadiness(BaseModel):
    ready: bool


class ModelReadiness(BaseModel):
    name: str
    ready: bool
    reason: str | None = Field(None, description="Why not ready: loading, refused (with the error) or draining.")


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class RequestInput(BaseModel):
    name: str = Field(examples=["images"])
    shape: list[int] = Field(examples=[[1, 28, 28]])
    datatype: str = Field(description="UINT8 or FP32 pixels [N, 28, 28], or BYTES [N] encoded images.")
    parameters: dict[str, Any] | None = Field(None, description="`binary_data_size` when the data is binary.")
    data: list[Any] | None = Field(
        None, description="Row-major values (flat or nested); for BYTES, base64 strings of image files."
    )


class RequestOutput(BaseModel):
    name: str = Field(examples=["class"])
    parameters: dict[str, Any] | None = Field(None, description="`binary_data: true` to receive it as binary.")


class InferRequest(BaseModel):
    id: str | None = None
    parameters: dict[str, Any] | None = Field(None, description="`binary_data_output: true` for binary outputs.")
    inputs: list[RequestInput] = Field(min_length=1, max_length=1, description="Exactly one tensor: `images`.")
    outputs: list[RequestOutput] | None = Field(None, description="Default: every output.")


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[bool] | list[int] | list[float] | None = None


class InferResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[ResponseOutput]


def output_specs(loaded: LoadedVersion) -> list[TensorMetadata]:
    specs = [
        TensorMetadata(name=OUTPUT_NAME, datatype="FP32", shape=[-1, NUM_CLASSES]),
        TensorMetadata(name=CLASS_OUTPUT, datatype="INT64", shape=[-1]),
        TensorMetadata(name=IS_DIGIT_OUTPUT, datatype="BOOL", shape=[-1]),
    ]
    if loaded.model.has_digit_score:
        specs.append(TensorMetadata(name=DIGIT_SCORE_NAME, datatype="FP32", shape=[-1]))
    return specs


def metadata_body(loaded: LoadedVersion, service: Service) -> ModelMetadata:
    """The version's tensors; `versions` lists every loaded version, the default first."""
    others = sorted(set(service.repository.routes.versions) - {loaded.version}, reverse=True)
    return ModelMetadata(
        name=loaded.model.info.name,
        versions=[str(v) for v in [loaded.version, *others]],
        platform=PLATFORM,
        inputs=[TensorMetadata(name=loaded.model.info.input_name, datatype="FP32", shape=[-1, IMAGE_SIDE, IMAGE_SIDE])],
        outputs=output_specs(loaded),
    )


def requested_outputs(body: dict[str, Any], loaded: LoadedVersion) -> list[tuple[str, bool]]:
    """(name, as binary) for each output to return, in the order asked."""
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise TensorError("'parameters' must be an object")
    default_binary = parameters.get("binary_data_output") is True
    known = [spec.name for spec in output_specs(loaded)]
    asked = body.get("outputs")
    if asked is None:
        return [(name, default_binary) for name in known]
    if not isinstance(asked, list):
        raise TensorError("'outputs' must be a list of {'name': ...} objects")
    chosen = []
    for spec in asked:
        name = spec.get("name") if isinstance(spec, dict) else None
        if name not in known:
            raise TensorError(f"unknown output {name!r}; the outputs are {known}")
        options = spec.get("parameters") or {}
        binary = options.get("binary_data", default_binary) if isinstance(options, dict) else default_binary
        chosen.append((name, binary is True))
    return chosen


@dataclass(frozen=True)
class Inference:
    """A decoded infer request: its JSON header, the outputs it asks for and its images."""

    body: dict[str, Any]
    outputs: list[tuple[str, bool]]
    images: Decoded


def decode_infer(body_bytes: bytes, header_length: str | None, loaded: LoadedVersion) -> Inference:
    head, binary = split_binary_body(body_bytes, header_length)
    body = parse_json(head)
    if not isinstance(body, dict):
        raise TensorError("the inference request must be a JSON object with 'inputs'")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1:
        raise TensorError(f"'inputs' must list exactly one tensor, '{loaded.model.info.input_name}'")
    outputs = requested_outputs(body, loaded)
    (raw,) = binary_sizes(inputs, binary)
    return Inference(body, outputs, v2_items(inputs[0], raw, loaded.model.info.input_name))


def infer_response(inference: Inference, loaded: LoadedVersion, answers: Predictions) -> Response:
    tensors = {
        OUTPUT_NAME: ("FP32", answers.probabilities.astype("<f4", copy=False)),
        CLASS_OUTPUT: ("INT64", answers.probabilities.argmax(axis=1).astype("<i8")),
        IS_DIGIT_OUTPUT: ("BOOL", answers.is_digit),
    }
    if answers.digit_scores is not None:
        tensors[DIGIT_SCORE_NAME] = ("FP32", answers.digit_scores.astype("<f4", copy=False))
    described, chunks = [], []
    for name, binary in inference.outputs:
        datatype, array = tensors[name]
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if binary:
            chunk = array.tobytes()
            entry["parameters"] = {"binary_data_size": len(chunk)}
            chunks.append(chunk)
        else:
            entry["data"] = array.ravel()
        described.append(entry)
    header: dict[str, Any] = {"model_name": loaded.model.info.name, "model_version": str(loaded.version)}
    if isinstance(inference.body.get("id"), str):
        header["id"] = inference.body["id"]
    header["outputs"] = described
    encoded = json_bytes(header)
    if not chunks:
        return Response(encoded, media_type="application/json")
    return Response(
        encoded + b"".join(chunks),
        media_type="application/octet-stream",
        headers={HEADER_LENGTH: str(len(encoded))},
    )


async def infer(request: Request, service: Service, loaded: LoadedVersion) -> Response:
    with loaded:
        body_bytes = await tensor_body(request, service)
        header_length = request.headers.get(HEADER_LENGTH)
        json_size = int(header_length) if header_length and header_length.isdecimal() else len(body_bytes)
        inference = await service.decode(partial(decode_infer, body_bytes, header_length, loaded), json_size)
        answers = await service.infer(await to_images(inference.images, service.preprocess), loaded)
    return infer_response(inference, loaded, answers)


@router.get("", response_model=ServerMetadata, summary="Server metadata")
async def server_metadata(request: Request) -> ServerMetadata:
    return ServerMetadata(name="mnist-service", version=request.app.version, extensions=EXTENSIONS)


@router.get("/health/live", response_model=Liveness, summary="Server liveness")
async def server_live() -> Liveness:
    return Liveness(live=True)


@router.get(
    "/health/ready",
    response_model=ServerReadiness,
    summary="Server readiness: the model is loaded and not draining",
    responses={503: {"model": ServerReadiness, "description": "Loading, or draining for shutdown."}},
)
async def server_ready(request: Request) -> ServerReadiness | JSONResponse:
    if readiness_of(request) != "ready":
        return JSONResponse({"ready": False}, status_code=503)
    return ServerReadiness(ready=True)


@router.get("/models/{model_name}", response_model=ModelMetadata, summary="Model metadata", responses=error_docs(404))
async def model_metadata(loaded: DefaultVersion, service: ServiceDep) -> ModelMetadata:
    return metadata_body(loaded, service)


@router.get(
    "/models/{model_name}/versions/{version}",
    response_model=ModelMetadata,
    summary="Metadata of one model version",
    responses=error_docs(404),
)
async def version_metadata(loaded: ServedVersion, service: ServiceDep) -> ModelMetadata:
    return metadata_body(loaded, service)


def readiness(service: Service, version: str | None) -> ModelReadiness | JSONResponse:
    """Ready: the model (or the version named) serves and the server is not draining. Otherwise 503 with the
    reason: loading, refused (with its error) or draining; a version the repository does not know is a 404."""
    name = service.repository.name
    status, reason = service.repository.readiness(version)
    if service.draining:
        status, reason = "draining", "the server is shutting down"
    if status == "ready":
        return ModelReadiness(name=name, ready=True)
    body = ModelReadiness(name=name, ready=False, reason=f"{status}: {reason}")
    return JSONResponse(body.model_dump(), status_code=503)


READY_DOC: dict[str, Any] = {"response_model": ModelReadiness, "responses": error_docs(404, 503)}


@router.get("/models/{model_name}/ready", summary="Model readiness", **READY_DOC)
async def model_ready(service: ServedModel) -> ModelReadiness | JSONResponse:
    return readiness(service, None)


@router.get("/models/{model_name}/versions/{version}/ready", summary="Readiness of one model version", **READY_DOC)
async def version_ready(version: str, service: ServedModel) -> ModelReadiness | JSONResponse:
    return readiness(service, version)


INFER_DOC: dict[str, Any] = {
    "response_model": InferResponse,
    "responses": error_docs(400, 404, 413, 415, 500, 503),
    "openapi_extra": request_body_doc(InferRequest, "application/json", "application/octet-stream"),
    "description": "JSON tensors, or the binary tensor data extension: the JSON header first, its length in the "
    f"`{HEADER_LENGTH}` header, then each binary input's bytes in order. A binary answer carries the same header.",
}


@router.post("/models/{model_name}/infer", summary="Inference", **INFER_DOC)
async def model_infer(model_name: str, request: Request, service: ServiceDep) -> Response:
    return await infer(request, service, target(service, model_name))


@router.post("/models/{model_name}/versions/{version}/infer", summary="Inference with a given version", **INFER_DOC)
async def version_infer(model_name: str, version: str, request: Request, service: ServiceDep) -> Response:
    return await infer(request, service, target(service, model_name, version))
