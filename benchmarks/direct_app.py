"""The direct baseline: plain FastAPI calling the SavedModel's serving signature once per request, no batching.

Everything else matches the service so that the comparison is about batching alone: the same model loading and
signature call (app.model.DigitModel), the same TensorFlow thread settings, the same image preprocessing
(app.imaging.preprocess), run in Starlette's thread pool so the event loop keeps accepting requests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, File, Request, UploadFile
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from app.imaging import ImageError, Limits, preprocess
from app.model import DigitModel, configure_threads
from app.settings import get_settings
from benchmarks.serve import serve


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    configure_threads(settings.intra_op_threads(), settings.inter_op_threads())
    app.state.model = DigitModel(settings.model_dir, settings.model_name, settings.model_version)
    app.state.limits = Limits(max_pixels=settings.max_image_pixels)
    yield


app = FastAPI(title="benchmark direct baseline", lifespan=lifespan)


@app.exception_handler(ImageError)
async def image_error(_: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=400)


def classify(model: DigitModel, limits: Limits, data: bytes) -> dict[str, Any]:
    probabilities = model.answer(preprocess(data, limits)[None]).probabilities[0]
    best = int(probabilities.argmax())
    return {
        "predicted_class": best,
        "confidence": float(probabilities[best]),
        "probabilities": [float(p) for p in probabilities],
        "model_version": model.info.version,
    }


@app.post("/predict")
async def predict(request: Request, file: Annotated[UploadFile, File()]) -> dict[str, Any]:
    data = await file.read()
    return await run_in_threadpool(classify, request.app.state.model, request.app.state.limits, data)


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ready"}  # answered only once lifespan has loaded the model


if __name__ == "__main__":
    serve("benchmarks.direct_app:app")
