"""Start the window: check for a display, build the pieces, pass them in, run."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

NO_DISPLAY = (
    "micro-app: no display found. Here you can run `micro-app classify PATH... --out DIR`, "
    "`micro-app live --demo`, or a window screenshot with "
    "`QT_QPA_PLATFORM=offscreen micro-app --demo --screenshot shot.png --quit-after 5`"
)


def has_display() -> bool:
    if os.environ.get("QT_QPA_PLATFORM", "").split(":")[0] in {
        "offscreen",
        "minimal",
        "vnc",
        "eglfs",
        "linuxfb",
    }:
        return True
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True  # Windows and macOS always have a window server in a user session


def source_entries() -> list[tuple[str, str]]:
    from micro_app.core.sources import list_cameras

    entries = [(f"{c.name} (#{c.index})", f"camera:{c.index}") for c in list_cameras()]
    return [*entries, ("Demo smear (no camera)", "demo")]


def run_window(
    *,
    source: str | None,
    model: Path | None,
    screenshot: Path | None = None,
    quit_after: float | None = None,
    backend: str | None = None,
) -> int:
    if not has_display():
        print(NO_DISPLAY, file=sys.stderr)
        return 2
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from micro_app.adapt.setup import microscope_key
    from micro_app.core.engine import Engine, EngineParams
    from micro_app.core.errors import MicroAppError
    from micro_app.core.models import default_model_dir
    from micro_app.core.paths import default_snapshot_dir
    from micro_app.core.session import FolderSink, LiveSession, SlideCounter
    from micro_app.core.settings import config_dir, load_settings
    from micro_app.core.sources import open_source
    from micro_app.gui.main_window import MainWindow
    from micro_app.gui.qt_session import QtSession
    from micro_app.gui.settings_actions import LIVE_RATE

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("micro_app")
    _set_icon(app)
    settings = load_settings()
    spec = source or settings.source
    entries = source_entries()
    if spec == "auto":
        spec = next((s for _, s in entries if s.startswith("camera")), "demo")
    engine = Engine(
        None,
        settings.preprocess,
        settings.locate,
        EngineParams(settings.engine.threshold, settings.um_per_px()),
        smooth_scale=True,
    )
    snapshots = Path(settings.snapshot_dir) if settings.snapshot_dir else default_snapshot_dir()
    problem = None
    try:
        frames: Any = open_source(
            spec, rate=None if spec.startswith("camera") else LIVE_RATE, loop=True
        )
    except MicroAppError as exc:  # said in the window; the user picks another source there
        frames, problem = None, str(exc)
    if backend is not None:
        settings = settings.with_changes(backend=backend)
    sink = FolderSink(snapshots)
    session = LiveSession(
        frames,
        engine,
        SlideCounter(settings.differential_target, engine.threshold, settings.watch),
        [sink],
    )
    session.backend = settings.backend
    qt = QtSession(session)
    window = MainWindow(
        settings.with_changes(source=spec),
        qt,
        sources=entries,
        snapshot_dir=snapshots,
        settings_dir=config_dir(),
    )
    sink.settings = lambda: window.settings.to_dict()  # the window's, as they are then
    window.show()
    qt.start()
    if problem is not None:
        window.show_error(problem)
    scope = settings.microscopes.get(microscope_key(session.status().source, settings.objective))
    folder = model
    for saved in (scope, settings.model_dir):  # a saved folder moved or deleted since: say so
        if folder is None and saved:
            if (Path(saved) / "card.json").is_file():
                folder = Path(saved)
            else:
                window.show_error(f"The saved model {saved} is gone: using the shipped model.")
    folder = folder or default_model_dir()
    if folder is not None:
        window.load_model(str(folder))  # on a worker thread: the window is up at once
    else:
        window.show_error(
            "No model installed: cells are located but not classified. "
            "Choose a model package with Ctrl+M."
        )
    if quit_after is not None:

        def finish() -> None:
            if screenshot is not None:
                _save_screenshot(window, screenshot)
            window.close()
            app.quit()

        QTimer.singleShot(int(quit_after * 1000), finish)
    try:
        return int(app.exec())
    except MicroAppError as exc:  # pragma: no cover - errors are shown in the window
        print(f"micro-app: {exc}", file=sys.stderr)
        return 2


def _save_screenshot(window: Any, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(path)):
        print(f"micro-app: could not write the screenshot {path}", file=sys.stderr)


def _set_icon(app: Any) -> None:
    from PySide6.QtGui import QIcon

    from micro_app.core.errors import MicroAppError
    from micro_app.resources import resource

    try:
        icon = QIcon()
        for n in (16, 32, 48, 64, 128, 256):
            icon.addFile(str(resource(f"icons/micro_app_{n}.png")))
        app.setWindowIcon(icon)
    except MicroAppError:  # a missing icon is cosmetic; the self-test reports it
        return
