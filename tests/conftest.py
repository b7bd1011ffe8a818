"""Shared fixtures. Core tests need no display; Qt runs offscreen."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The test run's own home, set before anything imports the app: settings, logs, labelled
# cells, adapted models and snapshots never land in the developer's folders. The app's
# variables name its three folders; HOME and the XDG variables move what platformdirs
# finds (Linux, macOS) and what Keras, Qt and matplotlib keep in the home. Subprocesses
# inherit it. Removed when the run ends.
REAL_HOME = Path.home()
REAL_ENV = dict(os.environ)  # as the developer's shell set it, for the test that checks
TEST_HOME = Path(tempfile.mkdtemp(prefix="micro_app_test_home_"))
USER_FOLDERS = {
    "HOME": "",
    "XDG_CONFIG_HOME": ".config",
    "XDG_DATA_HOME": ".local/share",
    "XDG_STATE_HOME": ".local/state",
    "XDG_CACHE_HOME": ".cache",
    "XDG_PICTURES_DIR": "Pictures",
    "MICRO_APP_CONFIG_DIR": ".config/micro_app",
    "MICRO_APP_LOG_DIR": ".local/state/micro_app/log",
    "MICRO_APP_DATA_DIR": ".local/share/micro_app",
}
for _name, _sub in USER_FOLDERS.items():
    os.environ[_name] = str(TEST_HOME / _sub)
os.environ.pop("KERAS_HOME", None)  # Keras' cache and keras.json: the test home's ~/.keras


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(TEST_HOME, ignore_errors=True)


SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _shared(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"real images not available: {path} is absent (a fresh clone has no ../shared)")
    return path


@pytest.fixture(scope="session")
def bccd_dir() -> Path:
    return _shared("bccd")


@pytest.fixture(scope="session")
def pbc_dir() -> Path:
    return _shared("pbc")


TINY_CLASSES = ("red_cell", "green_cell", "blue_cell")


def build_colour_model(size: int = 32, n_classes: int = 3, field: bool = False):  # type: ignore[no-untyped-def]
    """A real Keras model with fixed weights: class k wins when colour channel k dominates.

    Deterministic, so tests can assert what the engine reports for a known crop.
    """
    import keras
    import numpy as np

    inp = keras.Input((size, size, 3))
    x = keras.layers.GlobalAveragePooling2D()(inp)
    out = keras.layers.Dense(n_classes, activation="softmax", name="head")(x)
    model = keras.Model(inp, out)
    w = np.zeros((3, n_classes), np.float32)
    for k in range(min(3, n_classes)):
        w[k, k] = 20.0
    model.get_layer("head").set_weights([w, np.zeros(n_classes, np.float32)])
    return model


@pytest.fixture(scope="session")
def tiny_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid model package folder holding the colour model (32x32, 3 classes)."""
    from micro_app.core.models import ModelCard, save_package

    folder = tmp_path_factory.mktemp("models") / "tiny"
    card = ModelCard(
        name="tiny-colour",
        version="0.0.1",
        classes=TINY_CLASSES,
        input_size=(32, 32),
        description="test model: dominant colour channel",
        training_data={"name": "none (fixed weights)", "licence": "n/a"},
    )
    save_package(build_colour_model(), card, folder)
    return folder


def _left_running(before: set[threading.Thread], wait: float) -> list[threading.Thread]:
    """Threads started since ``before`` still alive after ``wait`` s (they may be ending)."""
    end = time.monotonic() + wait
    while True:
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not left or time.monotonic() > end:
            return left
        time.sleep(0.02)


def _named(threads: list[threading.Thread]) -> list[str]:
    return [f"{t.name} (started at {getattr(t, 'started_at', 'unknown')})" for t in threads]


@pytest.fixture(autouse=True)
def _no_dangling_threads(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test fails if it leaves one of the app's worker threads running (napari's
    conftest: dangling_qthreads), naming where each was started; the threads are then
    asked to stop, so one failing test does not hang the run."""
    before = set(threading.enumerate())
    yield
    if "qtbot" in request.fixturenames:
        return  # ``_no_leaks_with_qtbot`` checks these, after the widgets are gone
    left = [t for t in _left_running(before, 2.0) if hasattr(t, "request_stop")]
    for t in left:
        t.request_stop()  # type: ignore[attr-defined]
    assert not left, f"threads left running: {_named(left)}"


@pytest.fixture(autouse=True)
def _no_leaks_with_qtbot(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test that uses ``qtbot`` fails if it leaves a thread or a started QTimer
    running (napari's conftest: dangling_qthreads, dangling_qtimers), naming where each
    was started."""
    if "qtbot" not in request.fixturenames:
        yield
        return
    import traceback

    from PySide6.QtCore import QTimer

    qtbot = request.getfixturevalue("qtbot")  # set up first, so torn down after this
    started: list[tuple[Any, str]] = []
    original = QTimer.start

    def start(self: Any, *args: Any) -> None:
        caller = traceback.extract_stack(limit=2)[0]
        started.append((self, f"{caller.filename}:{caller.lineno} in {caller.name}"))
        original(self, *args)

    before = set(threading.enumerate())
    QTimer.start = start  # type: ignore[method-assign]
    try:
        yield
    finally:
        QTimer.start = original  # type: ignore[method-assign]
    qtbot.wait(50)  # let closed widgets finish their events
    left = _left_running(before, 2.0)
    for t in left:
        if hasattr(t, "request_stop"):
            t.request_stop()
    assert not left, f"threads left running: {_named(left)}"
    active = []
    for timer, where in started:
        try:
            if timer.isActive():
                active.append(
                    f"{timer.objectName() or type(timer.parent()).__name__} (started at {where})"
                )
        except RuntimeError:  # its C++ object was deleted with its parent: stopped
            continue
    assert not active, f"timers left running: {active}"


def make_window(  # type: ignore[no-untyped-def]
    qtbot,
    tmp_path: Path,
    spec: str = "demo",
    model: Path | None = None,
    rate: float | None = None,
    **window_kw: Any,
):
    """The window on a ``LiveSession`` built as the app builds it, shown and started."""
    from micro_app.core.engine import Engine, EngineParams
    from micro_app.core.session import FolderSink, LiveSession, SlideCounter
    from micro_app.core.settings import AppSettings
    from micro_app.core.sources import open_source
    from micro_app.gui.main_window import MainWindow
    from micro_app.gui.qt_session import QtSession
    from micro_app.gui.settings_actions import LIVE_RATE

    engine = Engine(None, params=EngineParams(), smooth_scale=True)
    sink = FolderSink(tmp_path / "snaps")
    session = LiveSession(
        open_source(spec, rate=rate or LIVE_RATE, loop=True), engine, SlideCounter(), [sink]
    )
    qt = QtSession(session)
    window = MainWindow(
        AppSettings(source=spec),
        qt,
        sources=[("Demo", "demo")],
        snapshot_dir=tmp_path / "snaps",
        settings_dir=tmp_path / "cfg",
        **window_kw,
    )
    sink.settings = lambda: window.settings.to_dict()
    qtbot.addWidget(window)
    window.show()
    qt.start()
    if model is not None:
        window.load_model(str(model))
        qtbot.waitUntil(lambda: session.model_info().name != "", timeout=30000)
    return window


def close_window(window: Any) -> None:
    """Close a main window and check that its timers and its session stopped."""
    from PySide6.QtWidgets import QApplication

    from micro_app.core.session import SessionState

    window.close()
    QApplication.processEvents()
    assert not window.qt.polling and not window._status_timer.isActive()
    assert window.session.state is SessionState.ENDED


def demo_fields(folder: Path, n: int) -> list[Path]:
    """``n`` demo frames (the drawn smear, seed 3) written as PNG fields into ``folder``."""
    import cv2

    from micro_app.core.sources.demo import DemoSource

    folder.mkdir(parents=True, exist_ok=True)
    src = DemoSource(seed=3)
    src.open()
    paths = []
    for i in range(n):
        frame = src.read()
        assert frame is not None
        paths.append(folder / f"field_{i}.png")
        cv2.imwrite(str(paths[-1]), cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))
    src.close()
    return paths


def slow_model_loads(monkeypatch: pytest.MonkeyPatch, seconds: float) -> list[str]:
    """Model loads that take ``seconds`` longer; returns the folders loaded, in order."""
    import micro_app.core.models as models

    real = models.load_package
    loaded: list[str] = []

    def slow(folder: Any, **kw: Any) -> Any:
        time.sleep(seconds)
        loaded.append(str(folder))
        return real(folder, **kw)

    monkeypatch.setattr(models, "load_package", slow)
    return loaded


def seq_of(got: tuple[int, Any] | None) -> int:
    """The sequence number of a session's ``latest_frame()`` or ``latest_update()``."""
    return got[0] if got is not None else 0


def wait_for(cond: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll ``cond`` until it holds (threads, no Qt event loop); fail after ``timeout`` s."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.02)
