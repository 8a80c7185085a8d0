"""POST /predict and /predict/batch: multipart image uploads in, digit probabilities out.

The hot path on purpose, where FastAPI's own way costs more than a few per cent of a request (docs/benchmark.md has
the figures): the upload is read with app.uploads, not `UploadFile = File()`, which spools each part through a
temporary file object; `?include_input`, `?version` and `?label` are read by hand, not as declared query parameters
(a request without a query string skips them all); the Service comes from the app's state, not through a
dependency. The request body and the query parameters are therefore described to OpenAPI here. The answer goes
through the route's response model, as FastAPI does it.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from PIL import Image
from pydantic import TypeAdapter, ValidationError

from app.api.errors import error_docs
from app.api.schemas import BatchPrediction, Prediction
from app.imaging import SUPPORTED
from app.service import Classified, Service, service_of
from app.uploads import read_form_files
from app.versions import LoadedVersion

router = APIRouter(tags=["predict"])

INCLUDE_INPUT_HELP = "Also return the 28x28 image the model saw, as a PNG data URL."
VERSION_HELP = "Classify with this loaded version (default: the newest version the policy serves)."
LABEL_HELP = "Classify with the version this label points at (e.g. stable); not together with `version`."
UPLOAD_HELP = f"The image: {SUPPORTED}; decided from its bytes, not its name."


def upload_form(field: str, description: str, many: bool) -> dict[str, Any]:
    """OpenAPI for these routes: a multipart form with one file field (or a repeated one), and `?include_input`
    (documented here because it is read by `include_input()`, as FastAPI would document a `bool` query parameter)."""
    file = {"type": "string", "format": "binary"}
    schema = {"type": "array", "items": file, "minItems": 1} if many else file
    flag_schema = {"type": "boolean", "default": False, "title": "Include Input", "description": INCLUDE_INPUT_HELP}
    version_schema = {"type": "integer", "minimum": 1, "title": "Version", "description": VERSION_HELP}
    label_schema = {"type": "string", "title": "Label", "description": LABEL_HELP}
    return {
        "parameters": [
            {"name": name, "in": "query", "required": False, "description": schema["description"], "schema": schema}
            for name, schema in (("include_input", flag_schema), ("version", version_schema), ("label", label_schema))
        ],
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": [field],
                        "properties": {field: {**schema, "description": description}},
                    }
                }
            },
        },
    }


BOOLEAN = TypeAdapter(bool)


def include_input(request: Request) -> bool:
    """`?include_input`, read by hand: a declared query parameter makes FastAPI inspect and validate it on every
    call, for a flag that API clients rarely send. Same values (1/0, true/false, yes/no, on/off...; the last one
    given wins) and the same 422 answer as the declared parameter gives."""
    if not request.scope["query_string"]:
        return False
    value = request.query_params.get("include_input")
    if value is None:
        return False
    try:
        return BOOLEAN.validate_python(value)
    except ValidationError as error:
        problems = error.errors(include_url=False)
        raise RequestValidationError([{**p, "loc": ("query", "include_input", *p["loc"])} for p in problems]) from None


def chosen_version(request: Request, service: Service) -> LoadedVersion:
    """The version `?version=` or `?label=` names, else the default; read by hand like `include_input()`."""
    if not request.scope["query_string"]:
        return service.route()
    query = request.query_params
    version, label = query.get("version"), query.get("label")
    if version is not None and label is not None:
        problem = {"type": "value_error", "loc": ("query", "label"), "msg": "give ?version or ?label, not both"}
        raise RequestValidationError([problem])
    return service.route(version, label)


def as_data_url(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(np.clip(image, 0, 255).round().astype(np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def to_predictions(result: Classified, version: int, with_input: bool) -> list[Prediction]:
    answers = result.predictions
    scores = answers.digit_scores
    return [
        Prediction(
            predicted_class=int(probabilities.argmax()),
            confidence=float(probabilities.max()),
            probabilities=probabilities.tolist(),
            is_digit=bool(answers.is_digit[i]),
            digit_score=float(scores[i]) if scores is not None else None,
            model_version=version,
            input_image=as_data_url(result.images[i]) if with_input else None,
        )
        for i, probabilities in enumerate(answers.probabilities)
    ]


@router.post(
    "/predict",
    response_model=Prediction,
    response_model_exclude_none=True,
    summary="Classify one uploaded image",
    responses=error_docs(400, 404, 413, 415, 422, 500, 503),
    openapi_extra=upload_form("file", UPLOAD_HELP, many=False),
)
async def predict(request: Request) -> Prediction:
    service = service_of(request)  # not Depends(get_service): FastAPI resolves a dependency on every request
    with_input = include_input(request)
    with chosen_version(request, service) as loaded:
        files = await read_form_files(request, "file", service.settings.max_upload_bytes)
        result = await service.classify(files, loaded)
    return to_predictions(result, loaded.version, with_input)[0]


@router.post(
    "/predict/batch",
    response_model=BatchPrediction,
    response_model_exclude_none=True,
    summary="Classify several uploaded images, answered in upload order",
    responses=error_docs(400, 404, 413, 415, 422, 500, 503),
    openapi_extra=upload_form(
        "files", f"One or more images (up to MAX_BATCH_FILES, MAX_BATCH_BYTES in all). {UPLOAD_HELP}", many=True
    ),
)
async def predict_batch(request: Request) -> BatchPrediction:
    service = service_of(request)
    with_input = include_input(request)
    settings = service.settings
    with chosen_version(request, service) as loaded:
        files = await read_form_files(request, "files", settings.max_upload_bytes, max_files=settings.max_batch_files)
        result = await service.classify(files, loaded)
    return BatchPrediction(model_version=loaded.version, predictions=to_predictions(result, loaded.version, with_input))
