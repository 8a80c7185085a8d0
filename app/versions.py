"""A version as the routers see it: its state (TensorFlow Serving's names), and once loaded, its model and batching
engine, held by each request from routing to answer. The routing table maps versions and labels to loaded ones."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from app.batching import BatchingEngine
from app.model import DigitModel, Predictions

# TensorFlow Serving's version states, as its status API names them.
START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"


class NoVersionReadyError(RuntimeError):
    """No version serves yet (loading, or none could be loaded); the client should retry later."""


@dataclass(eq=False)
class LoadedVersion:
    """One version in memory with its own batching engine. A request holds it (`with loaded:`) from routing to its
    answer; a retired version unloads once the last holder lets go."""

    model: DigitModel
    engine: BatchingEngine
    holders: int = 0
    _released: asyncio.Event | None = None

    @property
    def version(self) -> int:
        return self.model.info.version

    def predictions(self, records: np.ndarray) -> Predictions:
        """The engine's answer for a request (a record per image), read as this version's predictions."""
        return Predictions.from_records(records, self.model.has_digit_score)

    def __enter__(self) -> LoadedVersion:
        self.holders += 1
        return self

    def __exit__(self, *_: object) -> None:
        self.holders -= 1
        if not self.holders and self._released is not None:
            self._released.set()

    async def retire(self) -> None:
        """Finish every request already routed here, then stop the engine."""
        if self.holders:
            self._released = asyncio.Event()
            await self._released.wait()
        await self.engine.close()


@dataclass(frozen=True)
class Routes:
    """The routing table, replaced whole on every change: a request reads one consistent table."""

    default: LoadedVersion | None = None
    versions: Mapping[int, LoadedVersion] = field(default_factory=dict)
    labels: Mapping[str, LoadedVersion] = field(default_factory=dict)


@dataclass(frozen=True)
class VersionState:
    version: int
    state: str
    error_code: str = "OK"
    error_message: str = ""
    reason: str = ""  # of a failure: load, contract or canary
