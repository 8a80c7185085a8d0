"""The objects every router shares, built once at start-up: settings, the model repository, the decoder threads."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, TypeVar

import numpy as np
from fastapi import Depends, Request

from app.batching import BatchingEngine
from app.contract import IMAGE_SIDE
from app.gc_policy import collector_paused
from app.imaging import Limits, mnist_format_files, preprocess, preprocess_files
from app.logs import count_images, note_version
from app.model import DigitModel, Predictions, configure_threads
from app.png_short_path import declared_gray_png_size
from app.repository import Repository
from app.settings import Settings
from app.versions import LoadedVersion

# MNIST's own kind of file, a 28x28 8-bit grayscale PNG in MNIST's format, is decoded on the engine's thread as its
# batch forms, up to this many to a request: it decodes (app.imaging's short path for plain grayscale PNGs) in less
# time than the two thread hops it saves. Anything else (JPEG, other PNGs, a 28x28 picture that needs the digit
# finder) is read on a decoder thread, so a slow image never holds up other requests' batch.
INLINE_MAX_FILES = 5

# Tensor bodies up to this size are decoded on the event loop; a larger JSON tensor (thousands of numbers per image)
# is parsed on a decoder thread, where the interpreter's thread switching lets the loop go on serving meanwhile.
INLINE_DECODE_BYTES = 64 * 1024
T = TypeVar("T")


@dataclass
class Classified:
    images: np.ndarray  # float32 [N, 28, 28]: what the model saw
    predictions: Predictions


class NeedsDigitFinder(Exception):
    """A small upload that is not in MNIST's format: too slow to read on the engine's thread."""


class _MnistFormatPreparation:
    """`mnist_format_files` as the engine's prepare function, keeping what it made for the caller."""

    def __init__(self, files: Sequence[bytes], limits: Limits) -> None:
        self.files, self.limits = files, limits
        self.images: np.ndarray | None = None

    def __call__(self) -> np.ndarray:
        self.images = mnist_format_files(self.files, self.limits)
        if self.images is None:
            raise NeedsDigitFinder
        return self.images


def decodes_inline(files: Sequence[bytes]) -> bool:
    """Are these a few files whose headers declare MNIST's own kind (28x28 8-bit grayscale PNGs)?"""
    mnist_size = (IMAGE_SIDE, IMAGE_SIDE)
    return len(files) <= INLINE_MAX_FILES and all(declared_gray_png_size(data) == mnist_size for data in files)


@dataclass
class Service:
    """What the routers share: the settings, the model repository (the loaded versions, each with its batching
    engine) and the decoder threads. A request asks `route()` for its version and holds it until answered."""

    settings: Settings
    repository: Repository
    # Decoding gets its own small pool (one thread per core of this worker): a hop through it costs less than one
    # through Starlette's shared 40-thread pool, and it keeps uploads from competing with other work.
    decoders: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "preprocess"))
    draining: bool = False

    @classmethod
    def start(cls, settings: Settings) -> Service:
        """Start watching the model folder (on the running event loop) and return at once: versions load in the
        background, and readiness says 'loading' until one is verified."""

        def make_engine(model: DigitModel) -> BatchingEngine:
            engine = BatchingEngine(
                model.predict,
                max_batch=settings.batch_max_size,
                max_wait_s=settings.batch_max_wait_ms / 1000,
                quiet_s=settings.batch_quiet_ms / 1000,
                max_queue=settings.queue_max_images,
                timeout_s=settings.request_timeout_seconds,
            )
            engine.stats.submitted.append(count_images)
            return engine

        def prepare() -> None:  # on the loader thread, before the first load
            with collector_paused():
                configure_threads(settings.intra_op_threads(), settings.inter_op_threads())

        repository = Repository(settings, make_engine)
        repository.start(prepare)
        decoders = ThreadPoolExecutor(settings.intra_op_threads(), thread_name_prefix="preprocess")
        return cls(settings, repository, decoders)

    def route(self, version: int | str | None = None, label: str | None = None) -> LoadedVersion:
        """The loaded version a request names, or the default; hold it with `with` until the answer is made."""
        loaded = self.repository.route(version, label)
        note_version(loaded.version)  # the request's access line names the version that answers it
        return loaded

    @property
    def default(self) -> LoadedVersion:
        return self.route()

    @property
    def model(self) -> DigitModel:
        """The default version's model."""
        return self.default.model

    @property
    def engine(self) -> BatchingEngine:
        """The default version's batching engine."""
        return self.default.engine

    @property
    def version(self) -> int:
        return self.default.version

    @cached_property
    def limits(self) -> Limits:
        return Limits(max_pixels=self.settings.max_image_pixels)

    async def preprocess(self, data: bytes) -> np.ndarray:
        """Decode and normalise on a decoder thread: Pillow and NumPy work must not stall the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.decoders, preprocess, data, self.limits)

    async def decode(self, work: Callable[[], T], size: int) -> T:
        """`work()`, a request body's decoding: inline for a small body, on a decoder thread for a large one."""
        if size <= INLINE_DECODE_BYTES:
            return work()
        return await asyncio.get_running_loop().run_in_executor(self.decoders, work)

    async def classify(self, files: Sequence[bytes], loaded: LoadedVersion) -> Classified:
        """Uploaded images -> what the model saw and its answers from `loaded`, decoded off the event loop."""
        if decodes_inline(files):
            preparation = _MnistFormatPreparation(files, self.limits)
            try:
                records = await loaded.engine.predict_prepared(preparation, len(files))
            except NeedsDigitFinder:
                pass
            else:
                assert preparation.images is not None  # set by the engine before it answers
                return Classified(preparation.images, loaded.predictions(records))
        images = await asyncio.get_running_loop().run_in_executor(self.decoders, preprocess_files, files, self.limits)
        return Classified(images, loaded.predictions(await loaded.engine.predict(images)))

    async def infer(self, images: np.ndarray, loaded: LoadedVersion) -> Predictions:
        """Images already decoded (the tensor protocols') -> the answers from `loaded`."""
        return loaded.predictions(await loaded.engine.predict(images))

    async def stop(self) -> None:
        self.draining = True
        await self.repository.close()
        self.decoders.shutdown(wait=False)


def readiness_of(request: Request) -> str:
    """'ready' once a verified version serves; 'loading' before (or 'unavailable' when none could be loaded),
    'draining' during shutdown. Every readiness probe (ours, the Open Inference Protocol's, TensorFlow Serving's
    status) answers from this one rule."""
    if getattr(request.app.state, "draining", False):  # set by app.drain on SIGTERM, before a version may be loaded
        return "draining"
    service: Service | None = getattr(request.app.state, "service", None)
    if service is None:
        return "loading"
    if service.draining:
        return "draining"
    return service.repository.readiness()[0]


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


async def get_service(request: Request) -> Service:
    # A coroutine on purpose: FastAPI runs a plain-def dependency in its thread pool, a thread hop per request.
    return service_of(request)


ServiceDep = Annotated[Service, Depends(get_service)]  # the routers' typed dependency on the shared Service
