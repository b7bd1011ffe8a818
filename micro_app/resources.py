"""Where the app's own files are: the shipped models (``models/``) and ``resources/`` (the
icon, the About text and data credits), found the same way from a source checkout, a
wheel install and the PyInstaller bundle, through one function each."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from micro_app.core.errors import MicroAppError

APP_DIRS = ("models", "resources")


def app_root() -> Path:
    """The folder holding ``models/`` and ``resources/``: ``$MICRO_APP_HOME``, else the
    bundle's folder (PyInstaller), else the source tree, else ``<prefix>/share/micro_app``
    of a wheel install."""
    env = os.environ.get("MICRO_APP_HOME")
    if env:
        return Path(env)
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle)
    source = Path(__file__).resolve().parents[1]
    if (source / "resources").is_dir():
        return source
    return Path(sys.prefix) / "share" / "micro_app"


def resource(name: str) -> Path:
    """A file of ``resources/``; a missing one is one line naming what to reinstall."""
    path = app_root() / "resources" / name
    if not path.exists():
        raise MicroAppError(f"the app's file resources/{name} is missing: reinstall micro_app")
    return path


def models_dir() -> Path:
    return app_root() / "models"
