"""Response bodies of the service's own endpoints."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    detail: str = Field(description="What is wrong, in words meant for the client.")

    model_config = {
        "json_schema_extra": {
            "examples": [{"detail": "unsupported file type: expected a PNG, JPEG, GIF, BMP, TIFF or WebP image"}]
        }
    }


class Prediction(BaseModel):
    predicted_class: int = Field(ge=0, le=9, description="The most probable digit.")
    confidence: float = Field(ge=0, le=1, description="The probability of predicted_class.")
    probabilities: list[float] = Field(
        min_length=10, max_length=10, description="One probability per digit 0-9; they sum to 1."
    )
    is_digit: bool = Field(
        description="False when the image most likely shows no digit (a letter, a shape, a photo, a blank page); "
        "the probabilities are still given. Decided by digit_score; a version without one calls every image with "
        "ink a digit."
    )
    digit_score: float | None = Field(
        None,
        ge=0,
        le=1,
        description="How likely the image shows a digit at all; is_digit is digit_score >= 0.5. Given by versions "
        "trained with non-digits; 0 for a blank image.",
    )
    model_version: int = Field(description="Version folder of the model that answered.")
    input_image: str | None = Field(
        None, description="With ?include_input=true: the 28x28 image the model saw, as a PNG data URL."
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "predicted_class": 7,
                    "confidence": 0.9999,
                    "probabilities": [0.0, 0.0, 0.0001, 0.0, 0.0, 0.0, 0.0, 0.9999, 0.0, 0.0],
                    "is_digit": True,
                    "digit_score": 0.9987,
                    "model_version": 5,
                }
            ]
        }
    }


class BatchPrediction(BaseModel):
    model_version: int
    predictions: list[Prediction] = Field(description="One result per uploaded file, in upload order.")


class Health(BaseModel):
    status: str = Field(description="'ok' while the process is alive.", examples=["ok"])


class Readiness(BaseModel):
    status: str = Field(
        description="'ready', or 'loading' / 'unavailable' (no version could be loaded) / 'draining' (with 503).",
        examples=["ready"],
    )
    model_version: int | None = Field(None, description="The default version, once one serves.")
    detail: str | None = Field(None, description="Why not ready.")


class TensorContract(BaseModel):
    name: str
    dtype: str
    shape: list[int | None]
    description: str


class VersionDescription(BaseModel):
    version: int
    state: str = Field(
        description="START (waiting for its folder to be complete), LOADING, AVAILABLE (verified, serving), "
        "UNLOADING (retired, finishing its requests) or END (refused)."
    )
    default: bool = Field(False, description="Answers requests that name no version.")
    labels: list[str] = Field(default_factory=list)
    error: str | None = Field(None, description="Why it was refused; tried again when its folder changes.")
    test_accuracy: float | None = None


class ModelDescription(BaseModel):
    name: str = Field(examples=["mnist"])
    version: int | None = Field(description="The default version: the newest one the policy serves.", examples=[1])
    versions: list[VersionDescription] = Field(
        description="Versions loaded, loading, waiting for their folder or refused."
    )
    available_versions: list[int] = Field(description="Version folders on disk.", examples=[[1]])
    version_policy: str = Field(examples=["latest"])
    labels: dict[str, int] = Field(default_factory=dict, description="Labels serving, and their versions.")
    problems: list[str] = Field(
        default_factory=list,
        description="What was refused outside a version: labels pointing at versions not loaded, folders that are "
        "not version numbers, a config file that cannot be used.",
    )
    architecture: str | None = Field(None, description="Of the default version.", examples=["cnn"])
    parameters: int | None = None
    test_accuracy: float | None = Field(None, description="From the version's metrics.json.", examples=[0.9951])
    trained_with: dict[str, str] = Field(
        default_factory=dict, description="TensorFlow and Keras versions used to train."
    )
    input: TensorContract
    output: TensorContract
    upload_formats: list[str]
    max_upload_bytes: int
    max_batch_files: int
    max_batch_bytes: int
    max_tensor_bytes: int
