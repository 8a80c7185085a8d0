"""Where a worker's cold start goes: run in a fresh process, prints one JSON line of seconds per phase.

The phases are those of `mnist-serve` up to ready, done the same way (the garbage collector paused as `mnist-serve`
pauses it): the web stack and the app's modules, TensorFlow's import (app.tf_import.import_tensorflow, or the plain
`import tensorflow` with the argument `plain`), reading the SavedModel, and the first model call (tracing and
allocation).
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import gc  # noqa: E402  (imports are what is being timed)
import importlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    gc.disable()  # as app.server.main and app.service.collector_paused do
    phases: dict[str, float] = {}
    mark = STARTED

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        phases[name] = round(now - mark, 3)
        mark = now

    import uvicorn  # noqa: F401

    from app.main import create_app
    from app.settings import get_settings

    settings = get_settings()
    create_app(settings)
    lap("web stack and app modules")

    from app.contract import SIGNATURE_NAME
    from app.model import choose_version, configure_threads
    from app.tf_import import import_tensorflow

    tf = importlib.import_module("tensorflow") if sys.argv[1:] == ["plain"] else import_tensorflow()
    configure_threads(settings.intra_op_threads(), settings.inter_op_threads())
    lap("import tensorflow")

    path = settings.model_dir / str(choose_version(settings.model_dir, settings.model_version))
    signature = tf.saved_model.load(str(path)).signatures[SIGNATURE_NAME]
    lap("load SavedModel")

    signature(**{next(iter(signature.structured_input_signature[1])): tf.zeros((1, 28, 28), tf.float32)})
    lap("first call (warm-up)")
    phases["total"] = round(time.perf_counter() - STARTED, 3)
    status = Path("/proc/self/status").read_text().splitlines()
    rss = next(line for line in status if line.startswith("VmRSS:")).split()[1]
    phases["rss_mb"] = round(int(rss) / 1024, 1)
    print(json.dumps(phases))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
