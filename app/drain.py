"""Drain on SIGTERM, the way an orchestrator expects: readiness turns 503 'draining' at once, the server keeps
answering for DRAIN_SECONDS (time for load balancers to take it out of rotation), and only then stops accepting
connections and finishes what it has.

uvicorn installs its own SIGTERM handler in each server process (one process, or every worker), which stops
accepting at once. The app, once started in that process, puts its own handler in front: SIGTERM starts the drain
and hands the signal on to uvicorn's handler DRAIN_SECONDS later; more SIGTERMs change nothing (with WORKERS > 1 a
worker gets one from its supervisor besides any sent to the whole process group). SIGINT (Ctrl+C) still stops at
once, as uvicorn does.
Plain `signal` module calls on whatever handler is installed: no server subclass, the same in every process."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[int, FrameType | None], Any]


class Drain:
    def __init__(self, seconds: float, begin: Callable[[], None]) -> None:
        self.seconds = seconds
        self.begin = begin  # marks the app draining (readiness 503)
        self.started = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def install(self) -> bool:
        """Put the drain in front of the server's SIGTERM handler; only possible on the main thread (a server run
        in a thread, as in tests, has no signal handler to defer)."""
        previous = signal.getsignal(signal.SIGTERM)
        if threading.current_thread() is not threading.main_thread() or not callable(previous):
            return False
        self._loop = asyncio.get_running_loop()
        signal.signal(signal.SIGTERM, lambda sig, frame: self._on_signal(previous, sig, frame))
        return True

    def _on_signal(self, server_exit: Handler, sig: int, frame: FrameType | None) -> None:
        """Runs between two bytecodes of the main thread: only hands work to the event loop, which may be busy."""
        assert self._loop is not None
        if self.started:  # already draining: a process group's SIGTERM also reaches workers through their supervisor
            return
        self.started = True
        self._loop.call_soon_threadsafe(self._start, server_exit, sig)

    def _start(self, server_exit: Handler, sig: int) -> None:
        self.begin()
        log.info("SIGTERM: draining; readiness is 503 and the server keeps serving for %g s", self.seconds)
        assert self._loop is not None
        self._loop.call_later(self.seconds, self._stop_accepting, server_exit, sig)

    @staticmethod
    def _stop_accepting(server_exit: Handler, sig: int) -> None:
        log.info("drain window over: no new connections; finishing the requests in flight and the queued images")
        server_exit(sig, None)
