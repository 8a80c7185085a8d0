"""Liveness, readiness and what model is being served."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.api.schemas import Health, ModelDescription, Readiness, TensorContract
from app.contract import IMAGE_SIDE
from app.imaging import SIGNATURES
from app.model import available_versions
from app.service import ServiceDep, readiness_of

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="The model is loaded and warmed up",
    responses={503: {"model": Readiness, "description": "Still loading, or draining for shutdown."}},
)
async def readyz(request: Request) -> Readiness | JSONResponse:
    status = readiness_of(request)
    if status != "ready":
        return JSONResponse(Readiness(status=status).model_dump(), status_code=503)
    return Readiness(status=status, model_version=request.app.state.service.version)


@router.get("/model", response_model=ModelDescription, summary="The served model: version, contract, accuracy")
async def model_description(service: ServiceDep) -> ModelDescription:
    info, settings = service.model.info, service.settings
    metrics = info.metrics
    return ModelDescription(
        name=info.name,
        version=info.version,
        available_versions=available_versions(settings.model_dir),
        architecture=metrics.get("architecture"),
        parameters=metrics.get("parameters"),
        test_accuracy=metrics.get("test_accuracy"),
        trained_with={k: v for k, v in metrics.get("versions", {}).items() if k in ("tensorflow", "keras")},
        input=TensorContract(
            name=info.input_name,
            dtype="float32",
            shape=[None, IMAGE_SIDE, IMAGE_SIDE],
            description="Raw pixels 0-255, background 0, ink 255, digit centred by mass "
            "(what POST /predict makes of an uploaded image).",
        ),
        output=TensorContract(
            name=info.output_name,
            dtype="float32",
            shape=[None, 10],
            description="Probability of each digit 0-9; each row sums to 1.",
        ),
        upload_formats=sorted(SIGNATURES),
        max_upload_bytes=settings.max_upload_bytes,
        max_batch_files=settings.max_batch_files,
        max_batch_bytes=settings.max_batch_bytes,
        max_tensor_bytes=settings.max_tensor_bytes,
    )
