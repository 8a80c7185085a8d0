"""POST /predict and /predict/batch: multipart image uploads in, digit probabilities out.

The hot path on purpose: the upload is read with app.uploads (not FastAPI's `UploadFile = File()`, which spools each
part through a temporary file object) and the answer is serialised once by its pydantic model into a Response, so
FastAPI does not validate it a second time. The request body is documented by hand in OpenAPI for that reason.
"""

from __future__ import annotations

import base64
import io
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from PIL import Image

from app.api.errors import error_docs
from app.api.schemas import BatchPrediction, Prediction
from app.imaging import SUPPORTED
from app.service import service_of
from app.uploads import read_form_files

router = APIRouter(tags=["predict"])

IncludeInput = Annotated[bool, Query(description="Also return the 28x28 image the model saw, as a PNG data URL.")]
UPLOAD_HELP = f"The image: {SUPPORTED}; decided from its bytes, not its name."
JSON = "application/json"


def upload_form(field: str, description: str, many: bool) -> dict[str, Any]:
    """OpenAPI `requestBody` for a multipart form with one file field (or a repeated one)."""
    file = {"type": "string", "format": "binary"}
    schema = {"type": "array", "items": file} if many else file
    return {
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
        }
    }


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
async def predict(request: Request, include_input: IncludeInput = False) -> Response:
    service = service_of(request)  # not Depends(get_service): a dependency costs a resolution step per request
    files = await read_form_files(request, "file", service.settings.max_upload_bytes)
    result = await service.classify(files)
    seen = result.images[0] if include_input else None
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
async def predict_batch(request: Request, include_input: IncludeInput = False) -> Response:
    service = service_of(request)
    settings = service.settings
    files = await read_form_files(request, "files", settings.max_upload_bytes, max_files=settings.max_batch_files)
    result = await service.classify(files)
    batch = BatchPrediction(
        model_version=service.version,
        predictions=[
            to_prediction(row, service.version, image if include_input else None)
            for row, image in zip(result.probabilities, result.images, strict=True)
        ],
    )
    return Response(batch.model_dump_json(exclude_none=True), media_type=JSON)
