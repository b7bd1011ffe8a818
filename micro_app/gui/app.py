"""Start the window: check for a display, build the pieces, pass them in, show it, run.

The source and the model folder are chosen as ``micro-app live`` chooses them
(``core.startup``). The window shows before the cameras are listed (asking the OS can take
10 s on Windows and macOS): a plain thread lists them, the list reaches the GUI thread by a
queued signal, fills the source box and, for ``auto``, opens the first camera (else the
demo). A source that fails to open is not remembered for the next start.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import QApplication

from micro_app.core.startup import (
    AUTO,
    choose_model,
    choose_source,
    source_to_remember,
    wanted_source,
)

log = logging.getLogger("micro_app")

# what Xvfb and Qt's xcb plugin need on Debian/Ubuntu (the README's "No display" section)
XVFB_PACKAGES = "xvfb libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1"
DEMO_ENTRY = ("Demo: real cells (no camera)", "demo")
LOOKING = ("Looking for cameras…", AUTO)  # in the source box until the cameras are listed
NO_MODEL = (
    "No model installed: cells are located but not classified. Choose a model package with Ctrl+M."
)


def no_display_line(command: str, args: Sequence[str] = ()) -> str:
    """The one line on a machine without a display: the window on a virtual display
    (``xvfb-run``, with the packages it needs), or the commands that need no window.
    ``command`` is how the user started the app (``.venv/bin/micro-app``), ``args`` what
    they gave it."""
    again = " ".join([command, *(shlex.quote(a) for a in args)])
    return (
        f"micro-app: no display found: open the window on a virtual display with "
        f"`xvfb-run -a {again}` (Debian/Ubuntu: `sudo apt install {XVFB_PACKAGES}`), "
        f"or work without a window: `{command} classify PATH... --out DIR`, "
        f"`{command} live --demo`"
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


def source_entries(cameras: Sequence[Any]) -> list[tuple[str, str]]:
    """The source box's entries: each camera listed, then the demo."""
    entries = [(f"{c.name} (#{c.index})", f"camera:{c.index}") for c in cameras]
    return [*entries, DEMO_ENTRY]


class CameraLister(QObject):
    """Lists the cameras on a plain thread and hands the list to ``on_listed`` on the GUI
    thread (a queued signal). ``join()`` before the app exits: no thread outlives it."""

    _listed = Signal(object)

    def __init__(
        self,
        on_listed: Callable[[list[Any]], None],
        list_cameras: Callable[[], Sequence[Any]] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        if list_cameras is None:
            from micro_app.core.sources import list_cameras as os_cameras

            list_cameras = os_cameras
        self._list = list_cameras
        self._on_listed = on_listed
        self._listed.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self._thread = threading.Thread(target=self._run, name="list-cameras")

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        if self._thread.ident is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            cameras = list(self._list())
        except Exception:  # list_cameras never raises; a bug must not leave the box waiting
            log.exception("listing the cameras failed")
            cameras = []
        self._listed.emit(cameras)

    @Slot(object)
    def _deliver(self, cameras: list[Any]) -> None:
        self._on_listed(cameras)


@dataclass
class WindowRun:
    """The started window and what the app keeps of its start."""

    app: Any  # QApplication
    window: Any  # MainWindow
    qt: Any  # QtSession
    lister: CameraLister
    wanted: str  # the source asked for or saved ("auto", "camera:1", a path, a URL)
    unhook: Callable[[], None]  # puts back the exception hooks the window installed

    def close(self) -> None:
        """Close the window (stops the session) and wait for the camera list."""
        self.window.close()
        self.lister.join()
        self.unhook()


def open_window(
    *,
    source: str | None,
    model: Path | None,
    backend: str | None = None,
    list_cameras: Callable[[], Sequence[Any]] | None = None,
) -> WindowRun:
    """Build the window on the chosen source and model, show it, start the session, and
    list the cameras behind it (``list_cameras``: for tests, default the OS's)."""
    from micro_app.core.engine import Engine, EngineParams
    from micro_app.core.errors import MicroAppError
    from micro_app.core.paths import default_snapshot_dir
    from micro_app.core.session import (
        FolderSink,
        LiveSession,
        SessionState,
        SlideCounter,
        install_hooks,
    )
    from micro_app.core.settings import config_dir, load_settings
    from micro_app.core.sources import open_source
    from micro_app.gui.main_window import MainWindow
    from micro_app.gui.qt_session import QtSession
    from micro_app.gui.settings_actions import LIVE_RATE

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("micro_app")
    _set_icon(app)
    settings = load_settings()
    saved = settings.source
    wanted = wanted_source(source, settings)  # "auto" is chosen once the cameras are listed

    def build(spec: str) -> Any:
        return open_source(spec, rate=None if spec.startswith("camera") else LIVE_RATE, loop=True)

    engine = Engine(
        None,
        settings.preprocess,
        settings.locate,
        EngineParams(settings.engine.threshold, settings.um_per_px()),
        smooth_scale=True,
    )
    snapshots = Path(settings.snapshot_dir) if settings.snapshot_dir else default_snapshot_dir()
    frames: Any = None
    problem = None
    if wanted != AUTO:
        try:
            frames = build(wanted)
        except MicroAppError as exc:  # said in the window; the user picks another source there
            problem = str(exc)
    if backend is not None:
        settings = settings.with_changes(backend=backend)
    sink = FolderSink(snapshots)
    session = LiveSession(
        frames,
        engine,
        SlideCounter(settings.differential_target, engine.threshold, settings.watch),
        [sink],
        backend=settings.backend,
    )
    qt = QtSession(session)
    window = MainWindow(
        settings.with_changes(source=wanted),  # the source box shows what was asked for
        qt,
        sources=[LOOKING, DEMO_ENTRY] if wanted == AUTO else [DEMO_ENTRY],
        snapshot_dir=snapshots,
        settings_dir=config_dir(),
    )
    sink.settings = lambda: window.settings.to_dict()  # the window's, as they are then
    if wanted == AUTO:
        window.controls.source_combo.setEnabled(False)  # until the cameras are listed

    def forget(failed: str) -> None:
        """A source that failed to open is not the one to start on next time."""
        if window.settings.source == failed:  # the user has not chosen another since
            window.settings = replace(
                window.settings, source=source_to_remember(failed, True, saved)
            )

    if problem is not None:
        forget(wanted)
    elif frames is not None:
        opened = {"decided": False}

        def watch(status: Any) -> None:  # the first source's first verdict, on the GUI thread
            if opened["decided"] or status.state not in (SessionState.RUNNING, SessionState.FAILED):
                return
            opened["decided"] = True
            if status.state is SessionState.FAILED:
                forget(wanted)

        qt.status_changed.connect(watch)

    def load(folder: Path | None, notes: list[str]) -> None:
        for note in notes:  # a saved folder moved or deleted since
            window.show_error(note[:1].upper() + note[1:] + ".")
        if folder is not None:
            window.load_model(str(folder))  # on a worker thread: the window is up at once
        else:
            window.show_error(NO_MODEL)

    # the model set up for a microscope needs the camera: with "auto", chosen once listed
    wait_for_camera = model is None and wanted == AUTO and bool(settings.microscopes)

    def listed(cameras: list[Any]) -> None:
        if not qt.polling:  # the window closed while the cameras were listed
            return
        combo = window.controls.source_combo
        current = combo.currentData()
        if wanted == AUTO and current == AUTO:
            current = choose_source(AUTO, settings, lambda: cameras)
            try:
                session.set_source(build(current))
            except MicroAppError as exc:
                window.show_error(str(exc))
        window.controls.set_sources(source_entries(cameras), str(current))
        combo.setEnabled(True)
        if wait_for_camera:
            load(*choose_model(None, settings, session.status().source))

    window.show()
    # an exception nobody caught (a Qt slot, any thread): the banner and the log, once
    unhook = install_hooks(session.report_error)
    qt.start()
    if problem is not None:
        window.show_error(problem)
    if not wait_for_camera:
        load(*choose_model(model, settings, frames.name if frames is not None else None))
    lister = CameraLister(listed, list_cameras)
    lister.start()
    return WindowRun(app, window, qt, lister, wanted, unhook)


def run_window(
    *,
    source: str | None,
    model: Path | None,
    screenshot: Path | None = None,
    quit_after: float | None = None,
    backend: str | None = None,
) -> int:
    if not has_display():
        from micro_app.core.command import command_name

        print(no_display_line(command_name(), sys.argv[1:]), file=sys.stderr)
        return 2
    from micro_app.core.errors import MicroAppError

    run = open_window(source=source, model=model, backend=backend)
    if quit_after is not None:

        def finish() -> None:
            if screenshot is not None:
                _save_screenshot(run.window, screenshot)
            run.window.close()
            run.app.quit()

        QTimer.singleShot(int(quit_after * 1000), finish)
    try:
        return int(run.app.exec())
    except MicroAppError as exc:  # pragma: no cover - errors are shown in the window
        print(f"micro-app: {exc}", file=sys.stderr)
        return 2
    finally:
        run.lister.join()  # at most the OS's 10 s answer time, only if closed at once
        run.unhook()


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
