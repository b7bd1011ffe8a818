"""TensorFlow's native libraries write start-up notes straight to the process' stderr
(oneDNN, "could not find cuda drivers", "All log messages before absl::InitializeLog()
...") on import and on the first device query; no setting turns the absl lines off. A
lab user reads every line the app prints, so while TensorFlow loads, file descriptor 2
goes to a temporary file whose lines then go to the app's log at DEBUG level. Python
errors still reach the terminal: they are raised after the descriptor is restored.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any

log = logging.getLogger("micro_app")
_lock = threading.Lock()


@contextlib.contextmanager
def native_stderr_to_log(what: str) -> Iterator[None]:
    """Send what native code writes to fd 2 in this block to the log (DEBUG)."""
    with _lock:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):  # no real stderr (a windowed app)
            yield
            return
        with tempfile.TemporaryFile() as tmp:
            os.dup2(tmp.fileno(), 2)
            try:
                yield
            finally:
                with contextlib.suppress(OSError, ValueError, AttributeError):
                    sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                tmp.seek(0)
                for line in tmp.read().decode("utf-8", "replace").splitlines():
                    if line.strip():
                        log.debug("%s: %s", what, line)


class _RetracingToDebug(logging.Filter):
    """TensorFlow's Python logger warns "N out of the last M calls ... triggered
    tf.function retracing" when the app builds a traced predictor per model (teaching and
    set-up do, on purpose, once per model); the note goes to the app's log at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "tf.function retracing" in record.getMessage():
            log.debug("tensorflow: %s", record.getMessage().splitlines()[0])
            return False
        return True


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with native_stderr_to_log("tensorflow"):
            self.inner.exec_module(module)
            # the first device query prints "failed call to cuInit" on a machine without
            # a GPU; listing devices does not allocate any, memory growth can still be set
            with contextlib.suppress(Exception):
                module.config.list_physical_devices("GPU")
        logging.getLogger("tensorflow").addFilter(_RetracingToDebug())


class _QuietTensorFlow(importlib.abc.MetaPathFinder):
    """Wraps the first import of ``tensorflow``, then steps aside."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def install() -> None:
    """Quiet TensorFlow's import (once per process; a no-op when it is already loaded)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules or any(isinstance(f, _QuietTensorFlow) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietTensorFlow())
