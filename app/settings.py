"""Every knob of the service, read once from environment variables (or a .env file)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.model_config import ModelConfig, VersionPolicy, parse_labels, parse_policy

MIB = 1024 * 1024


def available_cores() -> int:
    """Cores this process may run on: honours taskset/cpuset pinning, unlike os.cpu_count()."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Settings(BaseSettings):
    # An empty variable (MODEL_CONFIG_FILE=) counts as unset, not as the path "." or a number that fails to parse.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", protected_namespaces=(), env_ignore_empty=True)

    model_base_path: Path = Field(
        Path("models"),
        description="Folder holding one folder per model name (as TensorFlow Serving's MODEL_BASE_PATH).",
    )
    model_name: str = Field(
        "mnist", description="Model folder under MODEL_BASE_PATH; its versions are numbered subfolders."
    )
    model_version: int | None = Field(
        None, ge=1, description="Serve only this version: short for MODEL_VERSION_POLICY='specific [N]'."
    )
    model_version_policy: str = Field(
        "latest",
        description="Versions to serve: 'latest', 'latest N', 'all' or 'specific [3, 4]' (as TensorFlow Serving); "
        "the newest one served answers requests that name none.",
    )
    model_labels: str = Field(
        "", description="Version labels, e.g. 'stable=3,canary=4'; a label serves once its version is loaded."
    )
    model_config_file: Path | None = Field(
        None,
        description="TOML file with version_policy and [labels], re-read when it changes; replaces "
        "MODEL_VERSION_POLICY and MODEL_LABELS.",
    )
    model_poll_seconds: float = Field(
        1.0, ge=0, description="Look for new versions and config changes this often; 0 = load once at start-up."
    )
    model_load_share: float = Field(
        0.25,
        gt=0,
        le=1,
        description="While a version serves, a new one loads on at most this share of the interpreter's time, so "
        "requests in flight do not wait on the load; 1 = load at full speed.",
    )
    max_upload_bytes: int = Field(
        5 * MIB, ge=1, description="Largest accepted image file, in bytes; enforced while the upload is read."
    )
    max_image_pixels: int = Field(
        40_000_000, ge=1, description="Largest accepted width x height, checked before decoding."
    )
    max_batch_files: int = Field(10_000, ge=1, description="Most files accepted by one POST /predict/batch.")
    max_batch_bytes: int = Field(
        32 * MIB,
        ge=1,
        description="Largest POST /predict/batch body, in bytes: all its files with their multipart headers.",
    )
    max_tensor_bytes: int = Field(
        32 * MIB,
        ge=1,
        description="Largest tensor request body (TensorFlow Serving and Open Inference Protocol routes), in bytes, "
        "after decompression; the default takes the whole MNIST test set as one binary FP32 tensor.",
    )
    batch_max_size: int = Field(
        64,
        ge=1,
        description="Most images the engine puts into one model call; larger requests are cut into calls of this "
        "size, which take turns with other requests.",
    )
    batch_max_wait_ms: float = Field(
        50.0,
        ge=0,
        description="Longest a request waits for company while the model is free, from its arrival (a lone "
        "client's requests stop waiting after a few batches alone).",
    )
    batch_quiet_ms: float = Field(
        1.0,
        ge=0,
        description="A waiting batch is sent once no new request has come for this long: the burst is over.",
    )
    queue_max_images: int = Field(
        50_000,
        ge=1,
        description="Images waiting for the model before new requests get 503; one request larger than this gets 413. "
        "It holds the largest tensor request (MAX_TENSOR_BYTES of UINT8 pixels).",
    )
    log_level: str = Field("info", description="Python logging level: debug, info, warning, error.")
    host: str = Field("127.0.0.1", description="Address to listen on (the container sets 0.0.0.0).")
    port: int = Field(8000, ge=1, le=65535, description="Port to listen on.")
    workers: int = Field(1, ge=1, description="Server processes, each with its own model copy.")
    tf_intra_op_threads: int = Field(0, ge=0, description="TensorFlow threads inside one op; 0 = cores / WORKERS.")
    tf_inter_op_threads: int = Field(
        0, ge=0, description="TensorFlow ops run in parallel; 0 = 1 (serving runs one graph at a time)."
    )
    drain_seconds: float = Field(
        5.0,
        ge=0,
        description="On SIGTERM, /readyz answers 503 'draining' while the server keeps serving this long (time for a "
        "load balancer to notice), then it stops accepting and finishes what it has.",
    )
    request_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="A request whose images have waited this long for the model gets 503 and leaves the queue; also "
        "how long shutdown waits for requests in flight.",
    )
    api_keys: str = Field(
        "", description="Comma-separated API keys; set (or API_KEYS_FILE) to require one on every route but health."
    )
    api_keys_file: Path | None = Field(
        None, description="File with one API key per line (a mounted secret), added to API_KEYS."
    )
    metrics_public: bool = Field(False, description="Serve /metrics without an API key even when keys are required.")
    cors_origins: str = Field(
        "", description="Comma-separated origins browsers may call the API from; empty sends no CORS headers."
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="'json': one JSON object per log line (the container's default); 'text' for a terminal."
    )

    @field_validator("model_version_policy")
    @classmethod
    def _policy_is_valid(cls, value: str) -> str:
        parse_policy(value)  # a ConfigError (a ValueError) says what is wrong at start-up
        return value

    @field_validator("model_labels")
    @classmethod
    def _labels_are_valid(cls, value: str) -> str:
        parse_labels(value)
        return value

    def model_config_from_env(self) -> ModelConfig:
        """The policy and labels the environment sets (the config file, when given, replaces them)."""
        policy = parse_policy(self.model_version_policy)
        if self.model_version is not None:
            policy = VersionPolicy("specific", versions=frozenset({self.model_version}))
        return ModelConfig(policy, parse_labels(self.model_labels))

    @property
    def model_dir(self) -> Path:
        return self.model_base_path / self.model_name

    def api_key_list(self) -> list[str]:
        """Every accepted API key: API_KEYS and the lines of API_KEYS_FILE, blanks dropped."""
        keys = self.api_keys.split(",")
        if self.api_keys_file is not None:
            keys += self.api_keys_file.read_text().splitlines()
        return [key.strip() for key in keys if key.strip()]

    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    def intra_op_threads(self) -> int:
        return self.tf_intra_op_threads or max(1, available_cores() // self.workers)

    def inter_op_threads(self) -> int:
        return self.tf_inter_op_threads or 1


@lru_cache
def get_settings() -> Settings:
    return Settings()
