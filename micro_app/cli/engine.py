"""The engine a command runs: the model folder chosen as the window chooses it
(``core.startup.choose_model``), loaded on the chosen backend, each note said in one line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from micro_app.core.engine import Engine, EngineParams
from micro_app.core.errors import MicroAppError
from micro_app.core.models import default_model_dir, load_package
from micro_app.core.settings import AppSettings, load_settings
from micro_app.core.startup import choose_model


def say(text: str) -> None:
    """One line on the terminal for the user (stderr: stdout stays the command's output)."""
    print(f"micro-app: {text}", file=sys.stderr)


def load_engine(
    model: Path | None,
    threshold: float | None,
    um_per_px: float | None,
    *,
    live: bool = False,
    backend: str | None = None,
    source_name: str | None = None,
    settings: AppSettings | None = None,
) -> tuple[Engine, AppSettings]:
    """The engine with the model asked for, else the one set up for this microscope
    (``source_name``), else the saved one, else the shipped one, on the chosen backend
    (default: the settings', ``auto``); and the settings it was built from."""
    settings = settings or load_settings()
    folder, notes = choose_model(model, settings, source_name)
    for note in notes:
        say(note)
    package: Any = None
    if folder is not None and model is None and folder != default_model_dir():
        try:  # a saved model: a folder spoilt since must not block anything
            package = load_package(folder, keras=False)
        except MicroAppError as exc:
            say(f"the saved model is unusable ({exc}); using the shipped one")
            folder = default_model_dir()
    if package is None and folder is not None:
        package = load_package(folder, keras=False)
    if package is None:
        say(
            "no model installed; cells are located but not classified "
            "(pass --model DIR to classify them)"
        )
    params = EngineParams(
        threshold=threshold if threshold is not None else settings.engine.threshold,
        um_per_px=um_per_px if um_per_px is not None else settings.um_per_px(),
    )
    engine = Engine(
        package,
        settings.preprocess,
        settings.locate,
        params,
        smooth_scale=live,
        backend=backend or settings.backend,
        on_message=say,
    )
    return engine, settings
