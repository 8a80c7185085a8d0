"""POST /predict and /predict/batch: multipart image uploads in, digit probabilities out.

The hot path on purpose: the upload is read with app.uploads (not FastAPI's `UploadFile = File()`, which spools each
part through a temporary file object) and the answer is serialised once by its pydantic model into a Response, so
FastAPI does not validate it a second time. The request body is documented by hand in OpenAPI for that reason.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from PIL import Image
from pydantic import TypeAdapter, ValidationError

from app.api.errors import error_docs
from app.api.schemas import BatchPrediction, Prediction
from app.imaging import SUPPORTED
from app.service import service_of
from app.uploads import read_form_files

router = APIRouter(tags=["predict"])

INCLUDE_INPUT_HELP = "Also return the 28x28 image the model saw, as a PNG data URL."
UPLOAD_HELP = f"The image: {SUPPORTED}; decided from its bytes, not its name."
JSON = "application/json"


def upload_form(field: str, description: str, many: bool) -> dict[str, Any]:
    """OpenAPI for these routes: a multipart form with one file field (or a repeated one), and `?include_input`
    (documented here because it is read by `include_input()`, as FastAPI would document a `bool` query parameter)."""
    file = {"type": "string", "format": "binary"}
    schema = {"type": "array", "items": file} if many else file
    flag_schema = {"type": "boolean", "default": False, "title": "Include Input", "description": INCLUDE_INPUT_HELP}
    return {
        "parameters": [
            {
                "name": "include_input",
                "in": "query",
                "required": False,
                "description": INCLUDE_INPUT_HELP,
                "schema": flag_schema,
            }
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
    """`?include_input`, read by hand. As a declared FastAPI `bool` query parameter it took 9 % of the route's CPU
    under cProfile (FastAPI inspects the parameter's annotation on every call), for a flag that API clients rarely
    send. Same values (1/0, true/false, yes/no, on/off...; the last one given wins) and the same 422 answer as the
    declared parameter gave."""
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


def as_data_url(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(np.clip(image, 0, 255).round().astype(np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def to_prediction(probabilities: np.ndarray, version: int, seen: np.ndarray | None) -> Prediction:
    best = int(probabilities.argmax())
    return Prediction(
        predicted_class=best,
        confidence=float(probabilities[best]),
        probabilities=probabilities.tolist(),
        model_version=version,
        input_image=as_data_url(seen) if seen is not None else None,
    )


@router.post(
    "/predict",
    response_model=Prediction,
    response_model_exclude_none=True,
    summary="Classify one uploaded image",
    responses=error_docs(400, 413, 415, 422, 500, 503),
    openapi_extra=upload_form("file", UPLOAD_HELP, many=False),
)
async def predict(request: Request) -> Response:
    service = service_of(request)  # not Depends(get_service): a dependency costs a resolution step per request
    with_input = include_input(request)
    files = await read_form_files(request, "file", service.settings.max_upload_bytes)
    result = await service.classify(files)
    seen = result.images[0] if with_input else None
    prediction = to_prediction(result.probabilities[0], service.version, seen)
    return Response(prediction.model_dump_json(exclude_none=True), media_type=JSON)


@router.post(
    "/predict/batch",
    response_model=BatchPrediction,
    response_model_exclude_none=True,
    summary="Classify several uploaded images, answered in upload order",
    responses=error_docs(400, 413, 415, 422, 500, 503),
    openapi_extra=upload_form("files", f"One or more images (up to MAX_BATCH_FILES). {UPLOAD_HELP}", many=True),
)
async def predict_batch(request: Request) -> Response:
    service = service_of(request)
    with_input = include_input(request)
    settings = service.settings
    files = await read_form_files(request, "files", settings.max_upload_bytes, max_files=settings.max_batch_files)
    result = await service.classify(files)
    batch = BatchPrediction(
        model_version=service.version,
        predictions=[
            to_prediction(row, service.version, image if with_input else None)
            for row, image in zip(result.probabilities, result.images, strict=True)
        ],
    )
    return Response(batch.model_dump_json(exclude_none=True), media_type=JSON)
