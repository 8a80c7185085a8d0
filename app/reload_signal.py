"""SIGHUP, a service manager's "reload" (`kill -HUP`, `systemctl reload`): the model folder and the config file are
looked at at once instead of at the next poll (with MODEL_POLL_SECONDS=0, the only look after start-up). Without a
handler the signal's default action ends the process. With WORKERS > 1, uvicorn's supervisor takes SIGHUP itself
and restarts the workers, which load the model folder as it is then."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable


def reload_on_hangup(reload: Callable[[], None]) -> bool:
    """Run `reload` on the event loop at each SIGHUP; only possible on the main thread (a server run in a thread,
    as in tests, takes no signals)."""
    if threading.current_thread() is not threading.main_thread():
        return False
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)
    return True
