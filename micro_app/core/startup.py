"""What a run starts on, chosen the same way by ``micro-app live``, ``classify``, ``bench``
and the window: the source (the one asked for, else the saved one; ``auto`` is the first
camera, else the demo) and the model folder (the one asked for, else the one set up for this
microscope, else the saved one, else the shipped one). Pure functions: no Qt, no TensorFlow,
no device opened; the caller lists the cameras and loads the model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from micro_app.core.models.card import CARD_FILE
from micro_app.core.models.package import default_model_dir

if TYPE_CHECKING:
    from micro_app.core.settings import AppSettings

AUTO = "auto"  # the first camera, else the demo
DEMO = "demo"


class Camera(Protocol):
    @property
    def index(self) -> int: ...


def microscope_key(camera: str, objective: str | None) -> str:
    """How a microscope is remembered: the camera's name and the objective in use."""
    return f"{camera} | {objective or 'no objective set'}"


def wanted_source(spec: str | None, settings: AppSettings) -> str:
    """The source asked for on the command line, else the saved one (may be ``auto``)."""
    return spec if spec else settings.source


def choose_source(
    spec: str | None, settings: AppSettings, cameras: Callable[[], Sequence[Camera]]
) -> str:
    """The source to open: ``spec``, else the saved one; ``auto`` becomes the first camera
    ``cameras()`` lists, else the demo (chosen up front, never as a silent replacement for
    a camera that failed). ``cameras`` is called only for ``auto``."""
    wanted = wanted_source(spec, settings)
    if wanted != AUTO:
        return wanted
    found = list(cameras())
    return f"camera:{found[0].index}" if found else DEMO


def source_to_remember(opened: str, failed: bool, saved: str) -> str:
    """The source to save for the next start after trying ``opened``: it when it worked
    (``auto`` stays ``auto``), else the one saved before, unless that is the one that
    failed: then ``auto``. A source that fails is never reopened on every start."""
    if not failed:
        return opened
    return saved if saved != opened else AUTO


def choose_model(
    explicit: Path | None,
    settings: AppSettings,
    source_name: str | None,
    *,
    shipped: Callable[[], Path | None] | None = None,
) -> tuple[Path | None, list[str]]:
    """The model folder to load, and the notes to show (one sentence each, no prefix).

    ``explicit`` (``--model``) wins and is not checked here: loading it says what is wrong.
    Else the folder set up for this microscope (``source_name`` and the objective), else the
    saved one, else the shipped one (``shipped()``, default: the app's ``models/``). A saved
    folder that is gone is said once and skipped. None: no model at all."""
    if explicit is not None:
        return Path(explicit), []
    saved = []
    if source_name:
        saved.append(settings.microscopes.get(microscope_key(source_name, settings.objective)))
    saved.append(settings.model_dir)
    gone: list[str] = []
    folder: Path | None = None
    for entry in saved:
        if not entry or entry in gone:
            continue
        if (Path(entry) / CARD_FILE).is_file():
            folder = Path(entry)
            break
        gone.append(entry)
    shipped_dir: Path | None = None
    if folder is None:
        shipped_dir = (shipped or default_model_dir)()
        folder = shipped_dir
    if folder is None:
        instead = "no model"
    elif folder == shipped_dir:
        instead = "the shipped model"
    else:
        instead = str(folder)
    notes = [f"the saved model {g} is gone (moved or deleted): using {instead}" for g in gone]
    return folder, notes
