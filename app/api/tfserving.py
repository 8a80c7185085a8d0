"""TensorFlow Serving's REST API (v1): model status, metadata and :predict in row and columnar formats.

Clients written for `tensorflow_model_server --rest_api_port` work unchanged: the same URLs, bodies and
`{"error": "..."}` errors. Besides 28x28 pixel arrays, an instance may be an encoded image as {"b64": "..."}, which
goes through the same preprocessing as an upload to /predict.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from app.api.protocols import (
    ServedModel,
    ServedVersion,
    check_target,
    error_docs,
    json_bytes,
    parse_json,
    request_body_doc,
    tensor_body,
)
from app.contract import IMAGE_SIDE, SIGNATURE_NAME
from app.service import Service, ServiceDep
from app.tensors import Decoded, TensorError, tfserving_items, to_images

router = APIRouter(prefix="/v1/models", tags=["TensorFlow Serving REST API"])

PREDICT_METHOD = "tensorflow/serving/predict"


class VersionStatus(BaseModel):
    version: str = Field(examples=["1"])
    state: str = Field(description="AVAILABLE once loaded and warmed up, UNLOADING while draining.")
    status: dict[str, str] = Field(examples=[{"error_code": "OK", "error_message": ""}])


class ModelStatus(BaseModel):
    model_version_status: list[VersionStatus]


class ModelSpec(BaseModel):
    name: str
    signature_name: str
    version: str


class ModelMetadata(BaseModel):
    model_spec: ModelSpec
    metadata: dict[str, Any] = Field(description="{'signature_def': {'signature_def': {name: SignatureDef}}}")


def exactly_one_format(schema: dict[str, Any]) -> None:
    """Both fields are declared required so that neither may be null; the body carries exactly one of them."""
    schema.pop("required")
    schema["oneOf"] = [{"required": ["instances"]}, {"required": ["inputs"]}]
    schema["examples"] = [{"instances": [{"b64": "iVBORw0KGgo..."}]}]


class PredictRequest(BaseModel):
    """Exactly one of `instances` (row format) or `inputs` (columnar format)."""

    signature_name: str | None = Field(None, description=f"Optional; only '{SIGNATURE_NAME}' exists.")
    instances: list[Any] = Field(
        min_length=1,
        description="One entry per image: 28x28 nested list of pixels 0-255, {'b64': '<base64 image file>'}, "
        "or either under the input's name {'images': ...}.",
    )
    inputs: Annotated[list[Any], Field(min_length=1)] | dict[str, Any] = Field(
        description="The images as one list (as in `instances`), or {'images': that list}."
    )

    model_config = {"json_schema_extra": exactly_one_format}


class RowPrediction(BaseModel):
    predictions: list[list[float]] = Field(description="Per image, the probability of each digit 0-9.")


class ColumnarPrediction(BaseModel):
    outputs: list[list[float]] = Field(description="Per image, the probability of each digit 0-9.")


def tensor_info(name: str, dims: list[int], tensor_name: str) -> dict[str, Any]:
    return {
        "dtype": "DT_FLOAT",
        "tensor_shape": {"dim": [{"size": str(d), "name": ""} for d in dims], "unknown_rank": False},
        "name": tensor_name,
    }


def status_body(service: Service) -> ModelStatus:
    state = "UNLOADING" if service.draining else "AVAILABLE"
    return ModelStatus(
        model_version_status=[
            VersionStatus(version=str(service.version), state=state, status={"error_code": "OK", "error_message": ""})
        ]
    )


def metadata_body(service: Service) -> ModelMetadata:
    info = service.model.info
    image_shape = [-1, IMAGE_SIDE, IMAGE_SIDE]
    signature = {
        "inputs": {info.input_name: tensor_info(info.input_name, image_shape, f"{SIGNATURE_NAME}_{info.input_name}:0")},
        "outputs": {info.output_name: tensor_info(info.output_name, [-1, 10], "StatefulPartitionedCall:0")},
        "method_name": PREDICT_METHOD,
    }
    return ModelMetadata(
        model_spec=ModelSpec(name=info.name, signature_name="", version=str(service.version)),
        metadata={"signature_def": {"signature_def": {SIGNATURE_NAME: signature}}},
    )


def decode_predict(body_bytes: bytes, input_name: str) -> tuple[Decoded, str]:
    body = parse_json(body_bytes)
    signature = body.get("signature_name") if isinstance(body, dict) else None
    if signature not in (None, "", SIGNATURE_NAME):
        raise TensorError(f"signature '{signature}' not found; the only signature is '{SIGNATURE_NAME}'")
    return tfserving_items(body, input_name)


async def predict(request: Request, service: Service, name: str, version: str | None) -> Response:
    check_target(service, name, version)
    body_bytes = await tensor_body(request, service)
    decoding = partial(decode_predict, body_bytes, service.model.info.input_name)
    images, layout = await service.decode(decoding, len(body_bytes))
    probabilities = await service.engine.predict(await to_images(images, service.preprocess))
    key = "predictions" if layout == "row" else "outputs"
    return Response(json_bytes({key: probabilities}), media_type="application/json")


PREDICT_DOC: dict[str, Any] = {
    "response_model": RowPrediction | ColumnarPrediction,
    "responses": error_docs(400, 404, 413, 415, 500, 503),
    "openapi_extra": request_body_doc(PredictRequest),
}


# The POST routes come first: on a request no route takes in full (e.g. OPTIONS .../mnist:predict), Starlette's 405
# names the methods of the first route whose path matches, and "/{model_name}" also matches "mnist:predict".
@router.post("/{model_name}:predict", summary="Predict (row or columnar format)", **PREDICT_DOC)
async def model_predict(model_name: str, request: Request, service: ServiceDep) -> Response:
    return await predict(request, service, model_name, None)


@router.post("/{model_name}/versions/{version}:predict", summary="Predict with a given model version", **PREDICT_DOC)
async def version_predict(model_name: str, version: str, request: Request, service: ServiceDep) -> Response:
    return await predict(request, service, model_name, version)


@router.post("/{model_name}:{verb}", include_in_schema=False)
@router.post("/{model_name}/versions/{version}:{verb}", include_in_schema=False)
async def other_verb(model_name: str, verb: str, service: ServiceDep, version: str | None = None) -> None:
    """:classify and :regress need Example-based signatures, which this model does not have."""
    check_target(service, model_name, version)
    raise TensorError(f"':{verb}' is not supported: the model has a predict signature only")


@router.get("/{model_name}", response_model=ModelStatus, summary="Model version status", responses=error_docs(404))
async def model_status(service: ServedModel) -> ModelStatus:
    return status_body(service)


@router.get(
    "/{model_name}/versions/{version}",
    response_model=ModelStatus,
    summary="Status of one model version",
    responses=error_docs(404),
)
async def version_status(service: ServedVersion) -> ModelStatus:
    return status_body(service)


@router.get(
    "/{model_name}/metadata",
    response_model=ModelMetadata,
    summary="Model metadata: the serving signature",
    responses=error_docs(404),
)
async def model_metadata(service: ServedModel) -> ModelMetadata:
    return metadata_body(service)


@router.get(
    "/{model_name}/versions/{version}/metadata",
    response_model=ModelMetadata,
    summary="Metadata of one model version",
    responses=error_docs(404),
)
async def version_metadata(service: ServedVersion) -> ModelMetadata:
    return metadata_body(service)
