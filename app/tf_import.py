"""`import tensorflow` for a process that only loads and calls SavedModels, with a plain import as the fallback.

The only module of the service that touches TensorFlow's private layout: the generated API namespaces
(`tensorflow._api.v2.<name>`) and its LazyLoader. Serving never uses most of those namespaces nor Keras's
optimizers, so the first import runs with placeholders for them, and each namespace becomes a LazyLoader right
after: other code in the process (tests, training, an embedding application) still gets the real `tf.data`,
`tf.compat`, Keras ... on first use. Any surprise (a TensorFlow release that needs a skipped module, or a layout
that moved) falls back to the ordinary `import tensorflow`, logged once. docs/benchmark.md ("Cold start") gives
what the trimmed import saves.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import tempfile
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

# Imported eagerly by Keras for code that trains or saves models; an import of a None entry fails, which
# TensorFlow tolerates.
SKIPPED_IMPORTS: tuple[str, ...] = ("keras.src.optimizers",)
# Public API namespaces that loading and calling a SavedModel never touches. tf.lite and tf.distribute stay: the
# real packages tensorflow/lite and tensorflow/distribute share their names, and Python sets such a package over a
# lazy namespace when something imports from it.
LAZY_NAMESPACES: tuple[str, ...] = (
    "__internal__", "compat", "summary", "tpu", "feature_column", "data", "xla", "mlir", "quantization", "audio",
    "signal", "nn", "profiler", "test", "raw_ops", "linalg", "experimental", "debugging", "random", "train", "io",
)  # fmt: skip


def api_module(namespace: str) -> str:
    return f"tensorflow._api.v2.{namespace}"


def import_tensorflow() -> Any:
    """The `tensorflow` module: trimmed on a process's first import, the plain import if that fails in any way."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with native_output_logged():
        try:
            return trimmed_import()
        except Exception as error:  # any surprise: the ordinary import is always correct, only slower
            log.warning("trimmed TensorFlow import failed (%s: %s); importing it whole", type(error).__name__, error)
            sys.modules.pop("tensorflow", None)
            return importlib.import_module("tensorflow")


def trimmed_import() -> Any:
    placeholders: dict[str, types.ModuleType | None] = dict.fromkeys(SKIPPED_IMPORTS)
    placeholders |= {api_module(name): types.ModuleType(api_module(name)) for name in LAZY_NAMESPACES}
    for name, placeholder in placeholders.items():
        sys.modules.setdefault(name, placeholder)  # type: ignore[arg-type]
    try:
        tf = importlib.import_module("tensorflow")
    finally:
        for name, placeholder in placeholders.items():
            if sys.modules.get(name, ...) is placeholder:
                del sys.modules[name]
    lazy_loader = importlib.import_module("tensorflow.python.util.lazy_loader")
    for name in LAZY_NAMESPACES:
        if getattr(tf, name, None) is placeholders[api_module(name)]:
            setattr(tf, name, lazy_loader.LazyLoader(name, vars(tf), api_module(name)))
    return tf


@contextmanager
def native_output_logged() -> Iterator[None]:
    """TensorFlow's C++ code writes to file descriptor 2 itself while it is imported, before TF_CPP_MIN_LOG_LEVEL
    applies (absl's messages from before its logging is initialised, such as the note that oneDNN is on). In a JSON
    log stream those would be lines of plain text, so for the import the descriptor goes to a temporary file, and each
    line written there is logged through `logging` afterwards. The import runs on a loader thread while requests are
    served: the log handlers writing to stderr keep writing to the real one meanwhile, so their lines are neither
    held back nor re-logged."""
    sys.stderr.flush()
    handlers = [handler for handler in stream_handlers() if handler.stream is sys.stderr]
    with tempfile.TemporaryFile() as captured, open(os.dup(2), "w", buffering=1) as real_stderr:
        for handler in handlers:
            handler.setStream(real_stderr)
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(real_stderr.fileno(), 2)
            for handler in handlers:
                handler.setStream(sys.stderr)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines():
                if line.strip():
                    log.info("TensorFlow: %s", line.strip())


def stream_handlers() -> list[logging.StreamHandler]:
    """Every logging handler that writes to a stream, on the root logger and on every named one."""
    named = [item for item in logging.Logger.manager.loggerDict.values() if isinstance(item, logging.Logger)]
    return [
        handler
        for logger in (logging.getLogger(), *named)
        for handler in logger.handlers
        if isinstance(handler, logging.StreamHandler)
    ]
