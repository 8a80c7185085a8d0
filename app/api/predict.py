"""POST /predict and /predict/batch: multipart image uploads in, digit probabilities out."""

from __future__ import annotations

import base64
import io
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, File, Query, UploadFile
from PIL import Image

from app.api.errors import error_docs
from app.api.schemas import BatchPrediction, Prediction
from app.imaging import SUPPORTED
from app.service import Service, get_service
from app.uploads import UploadTooLargeError, read_upload

router = APIRouter(tags=["predict"])

IncludeInput = Annotated[bool, Query(description="Also return the 28x28 image the model saw, as a PNG data URL.")]
UPLOAD_HELP = f"The image: {SUPPORTED}; decided from its bytes, not its name."


def as_data_url(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(np.clip(image, 0, 255).round().astype(np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def to_prediction(probabilities: np.ndarray, version: int, seen: np.ndarray | None) -> Prediction:
    best = int(probabilities.argmax())
    return Prediction(
        predicted_class=best,
        confidence=float(probabilities[best]),
        probabilities=[float(p) for p in probabilities],
        model_version=version,
        input_image=as_data_url(seen) if seen is not None else None,
    )


@router.post(
    "/predict",
    response_model=Prediction,
    response_model_exclude_none=True,
    summary="Classify one uploaded image",
    responses=error_docs(400, 413, 415, 422, 500, 503),
)
async def predict(
    file: Annotated[UploadFile, File(description=UPLOAD_HELP)],
    service: Annotated[Service, Depends(get_service)],
    include_input: IncludeInput = False,
) -> Prediction:
    image = await service.preprocess(await read_upload(file, service.settings.max_upload_bytes))
    probabilities = await service.engine.predict(image[None])
    return to_prediction(probabilities[0], service.version, image if include_input else None)


@router.post(
    "/predict/batch",
    response_model=BatchPrediction,
    response_model_exclude_none=True,
    summary="Classify several uploaded images, answered in upload order",
    responses=error_docs(400, 413, 415, 422, 500, 503),
)
async def predict_batch(
    files: Annotated[list[UploadFile], File(description=f"One or more images (up to MAX_BATCH_FILES). {UPLOAD_HELP}")],
    service: Annotated[Service, Depends(get_service)],
    include_input: IncludeInput = False,
) -> BatchPrediction:
    limit = service.settings.max_batch_files
    if len(files) > limit:
        raise UploadTooLargeError(f"{len(files)} files sent; the limit per request is {limit} (MAX_BATCH_FILES)")
    images = []
    for index, upload in enumerate(files):
        try:
            images.append(await service.preprocess(await read_upload(upload, service.settings.max_upload_bytes)))
        except ValueError as error:  # name the file at fault; the error keeps its type and so its status code
            raise type(error)(f"file #{index + 1}: {error}") from None
    probabilities = await service.engine.predict(np.stack(images))
    return BatchPrediction(
        model_version=service.version,
        predictions=[
            to_prediction(row, service.version, image if include_input else None)
            for row, image in zip(probabilities, images, strict=True)
        ],
    )
