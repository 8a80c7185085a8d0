"""Liveness, readiness and which model versions are served."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.api.schemas import Health, ModelDescription, Readiness, TensorContract, VersionDescription
from app.contract import IMAGE_SIDE, INPUT_NAME, OUTPUT_NAME
from app.imaging import SIGNATURES
from app.service import Service, ServiceDep, readiness_of

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    response_model_exclude_none=True,
    summary="A verified model version serves",
    responses={503: {"model": Readiness, "description": "Loading, no version could be loaded, or draining."}},
)
async def readyz(request: Request) -> Readiness | JSONResponse:
    status = readiness_of(request)
    if status != "ready":
        service: Service | None = request.app.state.service
        detail = service.repository.readiness()[1] if service is not None and status != "draining" else None
        body = Readiness(status=status, detail=detail).model_dump(exclude_none=True)
        return JSONResponse(body, status_code=503)
    return Readiness(status=status, model_version=request.app.state.service.version)


def describe_versions(service: Service) -> list[VersionDescription]:
    routes = service.repository.routes
    labels: dict[int, list[str]] = {}
    for label, labelled in routes.labels.items():
        labels.setdefault(labelled.version, []).append(label)
    described = []
    for state in service.repository.states():
        loaded = routes.versions.get(state.version)
        described.append(
            VersionDescription(
                version=state.version,
                state=state.state,
                default=routes.default is not None and routes.default is loaded,
                labels=sorted(labels.get(state.version, [])),
                error=state.error_message if state.error_code != "OK" else None,
                test_accuracy=loaded.model.info.metrics.get("test_accuracy") if loaded is not None else None,
            )
        )
    return described


def problems(service: Service) -> list[str]:
    repository = service.repository
    found = list(repository.label_errors.values())
    found += [f"folder '{name}' is not a version number; ignored" for name in repository.not_versions]
    found += [f"version {v} serves from memory: its folder is gone" for v in repository.without_folder]
    if repository.config.error is not None:
        found.append(f"config file not applied, the previous config stays in force: {repository.config.error}")
    return found


@router.get("/model", response_model=ModelDescription, summary="The served versions: states, default, labels, contract")
async def model_description(service: ServiceDep) -> ModelDescription:
    settings, repository = service.settings, service.repository
    default = repository.routes.default
    metrics = default.model.info.metrics if default is not None else {}
    return ModelDescription(
        name=repository.name,
        version=default.version if default is not None else None,
        versions=describe_versions(service),
        available_versions=repository.on_disk,
        version_policy=str(repository.config.config.policy),
        labels={label: loaded.version for label, loaded in sorted(repository.routes.labels.items())},
        problems=problems(service),
        architecture=metrics.get("architecture"),
        parameters=metrics.get("parameters"),
        test_accuracy=metrics.get("test_accuracy"),
        trained_with={k: v for k, v in metrics.get("versions", {}).items() if k in ("tensorflow", "keras")},
        input=TensorContract(
            name=default.model.info.input_name if default is not None else INPUT_NAME,
            dtype="float32",
            shape=[None, IMAGE_SIDE, IMAGE_SIDE],
            description="Raw pixels 0-255, background 0, ink 255, digit centred by mass "
            "(what POST /predict makes of an uploaded image).",
        ),
        output=TensorContract(
            name=OUTPUT_NAME,
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
