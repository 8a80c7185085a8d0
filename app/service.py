"""The objects every router shares, built once at start-up: settings, the loaded model, the batching engine."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from fastapi import Request
from starlette.concurrency import run_in_threadpool

from app.batching import BatchingEngine
from app.imaging import Limits, preprocess
from app.model import DigitModel
from app.settings import Settings


@dataclass
class Service:
    settings: Settings
    model: DigitModel
    engine: BatchingEngine
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
        return cls(settings, model, engine)

    @property
    def version(self) -> int:
        return self.model.info.version

    async def preprocess(self, data: bytes) -> np.ndarray:
        """Decode and normalise in the thread pool: Pillow and NumPy work must not stall the event loop."""
        return await run_in_threadpool(preprocess, data, Limits(max_pixels=self.settings.max_image_pixels))

    async def stop(self) -> None:
        self.draining = True
        await self.engine.close()


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service
