"""TensorFlow Serving's REST API (v1): model status, metadata and :predict in row and columnar formats.

Clients written for `tensorflow_model_server --rest_api_port` work unchanged: the same URLs, bodies and
`{"error": "..."}` errors. Besides 28x28 pixel arrays, an instance may be an encoded image as {"b64": "..."}, which
goes through the same preprocessing as an upload to /predict. A version whose signature also has `digit_score`
answers as TensorFlow Serving does for a signature of several outputs: each row (or the columnar `outputs`) is an
object keyed by output name.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.convertors import StringConvertor, register_url_convertor

from app.api.protocols import (
    VERSION_HEADER,
    DefaultVersion,
    LabelledVersion,
    ServedModel,
    ServedVersion,
    check_name,
    error_docs,
    json_bytes,
    parse_json,
    request_body_doc,
    target,
    tensor_body,
)
from app.contract import DIGIT_SCORE_NAME, IMAGE_SIDE, NUM_CLASSES, OUTPUT_NAME, SIGNATURE_NAME
from app.model import ModelNotFoundError, Predictions
from app.service import Service, ServiceDep
from app.tensors import Decoded, TensorError, tfserving_items, to_images
from app.versions import AVAILABLE, UNLOADING, LoadedVersion, VersionState

router = APIRouter(prefix="/v1/models", tags=["TensorFlow Serving REST API"])

PREDICT_METHOD = "tensorflow/serving/predict"


class SegmentConvertor(StringConvertor):
    """A path segment without a colon, for the status routes' last parameter: GET .../mnist:predict then matches
    no route in full, and is the :predict route's 405 (POST only) instead of a status request for "mnist:predict"."""

    regex = "[^/:]+"


register_url_convertor("segment", SegmentConvertor())


class VersionStatus(BaseModel):
    version: str = Field(examples=["1"])
    state: str = Field(
        description="START (waiting for its folder to be complete), LOADING, AVAILABLE (verified and serving), "
        "UNLOADING (retired or draining), END (refused: see status)."
    )
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


class NamedOutputs(BaseModel):
    probabilities: list[float] = Field(description="The probability of each digit 0-9.")
    digit_score: float = Field(description="How likely the image shows a digit at all; under 0.5: not a digit.")


class ColumnarOutputs(BaseModel):
    probabilities: list[list[float]] = Field(description="Per image, the probability of each digit 0-9.")
    digit_score: list[float] = Field(description="Per image, how likely it shows a digit at all.")


class RowPrediction(BaseModel):
    predictions: list[list[float]] | list[NamedOutputs] = Field(
        description="Per image, the probability of each digit 0-9; with a digit_score output, an object per image."
    )


class ColumnarPrediction(BaseModel):
    outputs: list[list[float]] | ColumnarOutputs = Field(
        description="Per image, the probability of each digit 0-9; with a digit_score output, an object of both."
    )


def tensor_info(name: str, dims: list[int], tensor_name: str) -> dict[str, Any]:
    return {
        "dtype": "DT_FLOAT",
        "tensor_shape": {"dim": [{"size": str(d), "name": ""} for d in dims], "unknown_rank": False},
        "name": tensor_name,
    }


def version_status(state: VersionState, draining: bool) -> VersionStatus:
    shown = UNLOADING if draining and state.state == AVAILABLE else state.state
    return VersionStatus(
        version=str(state.version),
        state=shown,
        status={"error_code": state.error_code, "error_message": state.error_message},
    )


def status_body(service: Service) -> ModelStatus | JSONResponse:
    """Every version the repository knows: loaded, loading, waiting for its folder or refused (with why). 503 with
    the same body and an `error` until a verified version serves."""
    states = service.repository.states()
    body = ModelStatus(model_version_status=[version_status(state, service.draining) for state in states])
    status, reason = service.repository.readiness()
    if service.draining or status != "ready":
        why = "the server is shutting down" if service.draining else f"{status}: {reason}"
        return JSONResponse({"error": why, **body.model_dump()}, status_code=503)
    return body


def one_version_status(service: Service, name: str, loaded: LoadedVersion | None, version: str | None) -> ModelStatus:
    """The status of one version (as named by number, or the one a label points at); 404 if it is unknown."""
    check_name(service, name)
    state = service.repository.state_of(str(loaded.version) if loaded is not None else str(version))
    if state is None:
        raise ModelNotFoundError(f"version '{version}' of model '{name}' is unknown")
    return ModelStatus(model_version_status=[version_status(state, service.draining)])


def metadata_body(loaded: LoadedVersion) -> ModelMetadata:
    info = loaded.model.info
    image_shape = [-1, IMAGE_SIDE, IMAGE_SIDE]
    output_shapes = {OUTPUT_NAME: [-1, NUM_CLASSES], DIGIT_SCORE_NAME: [-1]}
    signature = {
        "inputs": {info.input_name: tensor_info(info.input_name, image_shape, f"{SIGNATURE_NAME}_{info.input_name}:0")},
        "outputs": {
            name: tensor_info(name, output_shapes[name], f"StatefulPartitionedCall:{index}")
            for index, name in enumerate(info.output_names)
        },
        "method_name": PREDICT_METHOD,
    }
    return ModelMetadata(
        model_spec=ModelSpec(name=info.name, signature_name="", version=str(loaded.version)),
        metadata={"signature_def": {"signature_def": {SIGNATURE_NAME: signature}}},
    )


def decode_predict(body_bytes: bytes, input_name: str) -> tuple[Decoded, str]:
    body = parse_json(body_bytes)
    signature = body.get("signature_name") if isinstance(body, dict) else None
    if signature not in (None, "", SIGNATURE_NAME):
        raise TensorError(f"signature '{signature}' not found; the only signature is '{SIGNATURE_NAME}'")
    return tfserving_items(body, input_name)


async def predict(request: Request, service: Service, loaded: LoadedVersion) -> Response:
    with loaded:
        body_bytes = await tensor_body(request, service)
        decoding = partial(decode_predict, body_bytes, loaded.model.info.input_name)
        images, layout = await service.decode(decoding, len(body_bytes))
        answers = await service.infer(await to_images(images, service.preprocess), loaded)
    headers = {VERSION_HEADER: str(loaded.version)}
    return Response(json_bytes(predict_body(answers, layout)), media_type="application/json", headers=headers)


def predict_body(answers: Predictions, layout: str) -> dict[str, Any]:
    """The signature's outputs as TensorFlow Serving writes them: with one output, a bare list per image (row) or
    one list of them (columnar); with several, objects keyed by output name."""
    if answers.digit_scores is None:
        return {"predictions" if layout == "row" else "outputs": answers.probabilities}
    if layout == "row":
        rows = zip(answers.probabilities, answers.digit_scores, strict=True)
        return {"predictions": [{OUTPUT_NAME: p, DIGIT_SCORE_NAME: score} for p, score in rows]}
    return {"outputs": {OUTPUT_NAME: answers.probabilities, DIGIT_SCORE_NAME: answers.digit_scores}}


PREDICT_DOC: dict[str, Any] = {
    "response_model": RowPrediction | ColumnarPrediction,
    "responses": error_docs(400, 404, 413, 415, 500, 503),
    "openapi_extra": request_body_doc(PredictRequest),
    "description": f"The `{VERSION_HEADER}` header of the answer names the version that computed it.",
}
STATUS_DOC: dict[str, Any] = {"response_model": ModelStatus, "responses": error_docs(404, 503)}


# The POST routes come first: on a request no route takes in full (e.g. OPTIONS .../mnist:predict), Starlette's 405
# names the methods of the first route whose path matches, and "/{model_name}" also matches "mnist:predict".
@router.post("/{model_name}:predict", summary="Predict with the default version (row or columnar)", **PREDICT_DOC)
async def model_predict(model_name: str, request: Request, service: ServiceDep) -> Response:
    return await predict(request, service, target(service, model_name))


@router.post("/{model_name}/versions/{version}:predict", summary="Predict with a given model version", **PREDICT_DOC)
async def version_predict(model_name: str, version: str, request: Request, service: ServiceDep) -> Response:
    return await predict(request, service, target(service, model_name, version))


@router.post("/{model_name}/labels/{label}:predict", summary="Predict with a label's version", **PREDICT_DOC)
async def label_predict(model_name: str, label: str, request: Request, service: ServiceDep) -> Response:
    return await predict(request, service, target(service, model_name, label=label))


@router.post("/{model_name}:{verb}", include_in_schema=False)
@router.post("/{model_name}/versions/{version}:{verb}", include_in_schema=False)
@router.post("/{model_name}/labels/{label}:{verb}", include_in_schema=False)
async def other_verb(
    model_name: str, verb: str, service: ServiceDep, version: str | None = None, label: str | None = None
) -> None:
    """:classify and :regress need Example-based signatures, which this model does not have."""
    target(service, model_name, version, label)
    raise TensorError(f"':{verb}' is not supported: the model has a predict signature only")


@router.get("/{model_name:segment}", summary="Status of the model's versions", **STATUS_DOC)
async def model_status(service: ServedModel) -> ModelStatus | JSONResponse:
    return status_body(service)


@router.get("/{model_name}/versions/{version:segment}", summary="Status of one model version", **STATUS_DOC)
async def version_status_route(model_name: str, version: str, service: ServiceDep) -> ModelStatus:
    return one_version_status(service, model_name, None, version)


@router.get("/{model_name}/labels/{label:segment}", summary="Status of the version a label points at", **STATUS_DOC)
async def label_status(model_name: str, loaded: LabelledVersion, service: ServiceDep) -> ModelStatus:
    return one_version_status(service, model_name, loaded, None)


@router.get(
    "/{model_name}/metadata",
    response_model=ModelMetadata,
    summary="Model metadata: the serving signature of the default version",
    responses=error_docs(404, 503),
)
async def model_metadata(loaded: DefaultVersion) -> ModelMetadata:
    return metadata_body(loaded)


@router.get(
    "/{model_name}/versions/{version}/metadata",
    response_model=ModelMetadata,
    summary="Metadata of one model version",
    responses=error_docs(404),
)
async def version_metadata(loaded: ServedVersion) -> ModelMetadata:
    return metadata_body(loaded)


@router.get(
    "/{model_name}/labels/{label}/metadata",
    response_model=ModelMetadata,
    summary="Metadata of the version a label points at",
    responses=error_docs(404),
)
async def label_metadata(loaded: LabelledVersion) -> ModelMetadata:
    return metadata_body(loaded)
