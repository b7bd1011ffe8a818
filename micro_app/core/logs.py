"""One named logger, ``micro_app``, with the thread name in every line and a file in the
user's log folder.

On a terminal (``console=True``) a command's user reads every line, so each fault is said
once: the terminal shows warnings logged by the main thread, except those marked
``extra=FILE_ONLY`` because the command says them in its own words. Worker threads report
their faults through the session's error relay, which the command prints and the window
shows; their log lines, with the details, go to the file only."""

from __future__ import annotations

import logging
import logging.handlers
import threading
from pathlib import Path

from micro_app.core.paths import log_dir

FORMAT = "%(asctime)s %(levelname)s [%(threadName)s] %(name)s: %(message)s"
FILE_ONLY = {"file_only": True}  # ``log.warning(..., extra=FILE_ONLY)``: said another way


class ForTerminal(logging.Filter):
    """Pass a record to the terminal unless it is marked FILE_ONLY or comes from a worker
    thread (whose faults reach the user through the error relay)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "file_only", False):
            return False
        return record.thread == threading.main_thread().ident


def setup_logging(
    level: int = logging.INFO, log_folder: Path | None = None, console: bool = False
) -> Path | None:
    """Configure the ``micro_app`` logger once; returns the log file path (None if unwritable)."""
    logger = logging.getLogger("micro_app")
    if getattr(logger, "_micro_app_configured", False):
        return getattr(logger, "_micro_app_file", None)
    logger.setLevel(level)
    logger.propagate = False
    path: Path | None = None
    try:
        folder = log_folder or log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "micro_app.log"
        fh = logging.handlers.RotatingFileHandler(
            path, maxBytes=2_000_000, backupCount=3, encoding="utf-8"
        )
        fh.setFormatter(logging.Formatter(FORMAT))
        logger.addHandler(fh)
    except OSError:
        path = None
    if console:
        sh = logging.StreamHandler()
        sh.setFormatter(logging.Formatter(FORMAT))
        sh.setLevel(logging.WARNING)
        sh.addFilter(ForTerminal())
        logger.addHandler(sh)
    logger._micro_app_configured = True  # type: ignore[attr-defined]
    logger._micro_app_file = path  # type: ignore[attr-defined]
    return path
