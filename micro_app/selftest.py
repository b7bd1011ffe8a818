"""``micro-app selftest`` (``MicroApp --selftest`` in the installed app): is everything a
lab needs here and working? Each check prints one line, ``ok`` or ``MISSING``/``FAILED``
with what to do; the exit code is 0 only when all pass.

1. every file of ``resources/`` (the demo's stage of real cells too) and the shipped
   model's package is found;
2. the shipped model loads on the live backend and classifies a frame of the demo;
3. TensorFlow trains a small network one step (calibration and teaching need it);
4. Qt starts (offscreen, so this also runs where no display is attached);
5. OpenCV's camera back-ends are there (a camera itself need not be plugged in);
6. a snapshot is written to a temporary folder and read back.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REQUIRED_RESOURCES = (
    "about.html",
    "CREDITS.md",
    "icons/micro_app_256.png",
    "icons/micro_app.ico",
    "demo/stage.json",
    "demo/stage.jpg",
)


def _resources() -> str:
    from micro_app.resources import resource

    for name in REQUIRED_RESOURCES:
        resource(name)
    return f"resources: {len(REQUIRED_RESOURCES)} files found"


def _model() -> str:
    import numpy as np

    from micro_app.core.engine import Engine, EngineParams
    from micro_app.core.models import default_model_dir, load_package
    from micro_app.core.sources import demo_stage
    from micro_app.core.sources.demo import DemoSource

    folder = default_model_dir()
    if folder is None:
        raise RuntimeError("no model in models/: reinstall micro_app")
    t0 = time.perf_counter()
    src = DemoSource(rate=None, seed=0, stage=demo_stage())
    params = EngineParams(um_per_px=src.known_um_per_px)  # the demo knows its scale
    engine = Engine(load_package(folder, keras=False), params=params)
    src.open()
    try:
        for _ in range(300):
            frame = src.read()
            assert frame is not None
            result = engine.process(frame.image)
            if result.cells:
                break
    finally:
        src.close()
    if not result.cells or result.model is None:
        raise RuntimeError("the model classified no cell of the demo")
    probs = np.array([sum(c.probabilities.values()) for c in result.cells])
    # the 8-bit model's outputs come in steps of 1/255: their sum is 1 give or take 0.01
    if not np.allclose(probs, 1.0, atol=0.02):
        raise RuntimeError("the model's probabilities do not add up: the weights are damaged")
    card = engine.classifier.card if engine.classifier else None
    name = f"{card.name} {card.version}" if card else "?"
    return (
        f"model: {name} on {engine.device}, {len(result.cells)} demo cells classified in "
        f"{time.perf_counter() - t0:.1f} s"
    )


def _training() -> str:
    """What "Set up this microscope" needs: TensorFlow trains a small network one step."""
    import numpy as np

    from micro_app.training.architectures import build_model

    t0 = time.perf_counter()
    model = build_model("live_cnn", 3, 32)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).random((8, 32, 32, 3)).astype("float32")
    loss = float(model.train_on_batch(x, np.array([0, 1, 2, 0, 1, 2, 0, 1])))
    if not np.isfinite(loss):
        raise RuntimeError("a training step gave no finite loss: reinstall micro_app")
    from micro_app.core.models.runtime.tf_runtime import describe_device

    took = time.perf_counter() - t0
    return f"training (for setting up a microscope) works on {describe_device()} ({took:.1f} s)"


def _qt() -> str:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication, QLabel

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QGuiApplication)
    label = QLabel("micro_app")
    label.show()
    app.processEvents()
    label.close()
    return f"Qt {__import__('PySide6').__version__} starts ({app.platformName()})"


def _capture() -> str:
    import cv2

    names = [
        cv2.videoio_registry.getBackendName(b) for b in cv2.videoio_registry.getCameraBackends()
    ]
    if not names:
        raise RuntimeError("OpenCV has no camera back-end: reinstall micro_app")
    return f"camera back-ends: {', '.join(names)}"


def _snapshot() -> str:
    import numpy as np
    import tifffile

    from micro_app.core.export import write_snapshot
    from micro_app.core.imageio import read_image_rgb
    from micro_app.core.results import FrameResult

    img = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    result = FrameResult(0, 0.0, (120, 160), (), 0.1, "estimated", 1.0)
    with tempfile.TemporaryDirectory() as d:
        paths = write_snapshot(Path(d), img, result, img)
        assert paths.raw is not None
        if not np.array_equal(tifffile.imread(paths.raw), img):
            raise RuntimeError("the raw snapshot reads back different")
        if not np.array_equal(read_image_rgb(paths.annotated), img):
            raise RuntimeError("the annotated snapshot reads back different")
    return "snapshots: written and read back"


CHECKS: tuple[tuple[str, Callable[[], str]], ...] = (
    ("resources", _resources),
    ("model", _model),
    ("training", _training),
    ("Qt", _qt),
    ("camera back-ends", _capture),
    ("snapshot", _snapshot),
)


def run(print_fn: Callable[[str], object] = print) -> int:
    failed = 0
    for name, check in CHECKS:
        try:
            print_fn(f"ok       {check()}")
        except Exception as exc:  # every failure is one line; the next check still runs
            failed += 1
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print_fn(f"FAILED   {name}: {first}")
    print_fn("self-test passed" if not failed else f"self-test: {failed} check(s) failed")
    return 0 if not failed else 1
