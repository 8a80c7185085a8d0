"""The objects every router shares, built once at start-up: settings, the loaded model, the batching engine."""

from __future__ import annotations

import asyncio
import gc
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from fastapi import Request

from app.batching import BatchingEngine
from app.imaging import Limits, preprocess
from app.model import DigitModel
from app.settings import Settings


@dataclass
class Service:
    settings: Settings
    model: DigitModel
    engine: BatchingEngine
    # Decoding gets its own small pool (one thread per core of this worker): a hop through it costs about a
    # third of one through Starlette's shared 40-thread pool, and it keeps uploads from competing with other work.
    decoders: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "preprocess"))
    draining: bool = False

    @classmethod
    def start(cls, settings: Settings) -> Service:
        model = DigitModel(settings.model_dir, settings.model_name, settings.model_version)
        engine = BatchingEngine(
            model.predict,
            max_batch=settings.batch_max_size,
            max_wait_s=settings.batch_max_wait_ms / 1000,
            max_queue=settings.queue_max_images,
        )
        decoders = ThreadPoolExecutor(settings.intra_op_threads(), thread_name_prefix="preprocess")
        # TensorFlow leaves ~300k long-lived objects that every full collection would walk (0.2-0.6 s with the GIL
        # held: a latency spike for every request in flight); frozen, the collector skips them. No gc.collect()
        # first: it would cost that time again at every start-up, to free a little start-up garbage.
        gc.freeze()
        return cls(settings, model, engine, decoders)

    @property
    def version(self) -> int:
        return self.model.info.version

    async def preprocess(self, data: bytes) -> np.ndarray:
        """Decode and normalise on a decoder thread: Pillow and NumPy work must not stall the event loop."""
        limits = Limits(max_pixels=self.settings.max_image_pixels)
        return await asyncio.get_running_loop().run_in_executor(self.decoders, preprocess, data, limits)

    async def stop(self) -> None:
        self.draining = True
        await self.engine.close()
        self.decoders.shutdown(wait=False)


def readiness_of(request: Request) -> str:
    """'ready' once the model is loaded and warmed up; 'loading' before, 'draining' during shutdown. Every readiness
    probe (ours, the Open Inference Protocol's) answers from this one rule."""
    service: Service | None = getattr(request.app.state, "service", None)
    if service is None:
        return "loading"
    return "draining" if service.draining else "ready"


async def get_service(request: Request) -> Service:
    # A coroutine on purpose: FastAPI runs a plain-def dependency in its thread pool, a thread hop per request.
    service: Service = request.app.state.service
    return service
