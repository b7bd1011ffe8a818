"""Where the model runs: the backend seam, ONNX Runtime's devices and their fall-back, and
that ONNX and TensorFlow give the same answers."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import seq_of

from micro_app.core.engine import Engine, EngineParams
from micro_app.core.models import load_package
from micro_app.core.models.classifier import Classifier
from micro_app.core.models.runtime import resolve
from micro_app.core.models.runtime.onnx_runtime import OnnxRunner

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def onnx_package(tiny_package: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from micro_app.training.export import export

    folder = tmp_path_factory.mktemp("onnx") / "tiny"
    shutil.copytree(tiny_package, folder)
    export(folder, "onnx")
    return folder


def _crops(n: int = 12, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def test_auto_runs_onnx_weights_on_onnxruntime_and_keras_weights_on_tensorflow(
    tiny_package: Path, onnx_package: Path
) -> None:
    assert resolve(load_package(tiny_package, keras=False).card) == "tensorflow"
    pkg = load_package(onnx_package, keras=False)
    assert resolve(pkg.card) == "onnx"
    clf = Classifier(pkg)
    assert clf.backend == "onnx" and clf.device == "CPU (onnxruntime)"
    assert pkg.model is None  # the Keras file was never read
    tf_clf = Classifier(load_package(onnx_package), backend="tensorflow")
    assert tf_clf.device.endswith("(tensorflow)")


def test_onnx_and_tensorflow_agree_on_every_package_the_app_writes(onnx_package: Path) -> None:
    x = _crops(32)
    onnx = Classifier(load_package(onnx_package, keras=False), backend="onnx").predict(x)
    tf = Classifier(load_package(onnx_package), backend="tensorflow").predict(x)
    assert np.array_equal(onnx.argmax(1), tf.argmax(1))  # the same classes for the same cells
    assert float(np.abs(onnx - tf).max()) <= 1e-4  # ``training.export.TOLERANCE``


def test_the_live_path_on_onnx_never_imports_tensorflow(onnx_package: Path) -> None:
    code = (
        "import sys, numpy as np\n"
        "from micro_app.core.models import load_package\n"
        "from micro_app.core.engine import Engine\n"
        f"e = Engine(load_package({str(onnx_package)!r}, keras=False))\n"
        "e.classifier.predict(np.zeros((2, 32, 32, 3), np.uint8))\n"
        "print(e.device, 'tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["CPU", "(onnxruntime)", "False", "False"]


def test_a_device_that_cannot_start_falls_back_with_one_line(onnx_package: Path) -> None:
    said: list[str] = []
    path = onnx_package / "model.onnx"
    runner = OnnxRunner(
        path, providers=["NoSuchExecutionProvider", "CPUExecutionProvider"], on_message=said.append
    )
    assert runner.device == "CPU (onnxruntime)"
    assert len(said) == 1 and "NoSuchExecutionProvider" in said[0] and "\n" not in said[0]
    probs, _ = runner(_crops(3).astype(np.float32) / 255)
    assert probs.shape == (3, 3)


def test_a_device_that_fails_while_running_hands_over_and_frames_keep_coming(
    onnx_package: Path,
) -> None:
    """An out-of-memory or device error on one provider: the next one runs the same batch."""
    said: list[str] = []
    runner = OnnxRunner(
        onnx_package / "model.onnx",
        providers=["CPUExecutionProvider", "CPUExecutionProvider"],
        on_message=said.append,
    )

    class Failing:
        def __init__(self, inner: object) -> None:
            self.inner = inner

        def run(self, *args: object) -> object:
            raise RuntimeError("CUDA error: out of memory")

    runner._session = Failing(runner._session)  # type: ignore[assignment]
    probs, _ = runner(_crops(2).astype(np.float32) / 255)
    assert probs.shape == (2, 3)
    assert any("failed while running" in s and "out of memory" in s for s in said)


def test_a_live_session_reports_the_hand_over_and_keeps_classifying(onnx_package: Path) -> None:
    from micro_app.core.session import LiveSession
    from micro_app.core.sources.demo import DemoSource

    session = LiveSession(DemoSource(rate=30.0), Engine(None, params=EngineParams()))
    errors: list[str] = []
    session.events.error.connect(lambda e: errors.append(e.message))
    session.start()
    session.load_model(onnx_package, "onnx")
    end = time.monotonic() + 30
    while session.engine.classifier is None and time.monotonic() < end:
        time.sleep(0.05)
    clf = session.engine.classifier
    assert clf is not None and clf.device == "CPU (onnxruntime)"
    runner = clf._runner
    runner._queue.append("CPUExecutionProvider")  # type: ignore[attr-defined]

    class Failing:
        def run(self, *args: object) -> object:
            raise RuntimeError("device lost")

    runner._session = Failing()  # type: ignore[attr-defined]
    seen = seq_of(session.latest_update())
    while seq_of(session.latest_update()) < seen + 10 and time.monotonic() < end:
        time.sleep(0.05)
    session.stop()
    assert seq_of(session.latest_update()) >= seen + 10  # frames kept coming, classified
    assert any("device lost" in m for m in errors)


def test_a_tensorflow_gpu_that_runs_out_of_memory_hands_over_to_the_cpu(
    tiny_package: Path,
) -> None:
    import tensorflow as tf

    said: list[str] = []
    clf = Classifier(load_package(tiny_package), backend="tensorflow", on_message=said.append)
    runner = clf._runner
    runner.device = "GPU: /physical_device:GPU:0 (tensorflow)"  # type: ignore[misc]
    calls = {"n": 0}

    def oom(x: object) -> object:
        calls["n"] += 1
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")

    runner._fn = oom  # type: ignore[attr-defined]
    probs = clf.predict(_crops(4))
    assert probs.shape == (4, 3) and calls["n"] == 1
    assert clf.device == "CPU (tensorflow)"
    assert len(said) == 1 and "OOM" in said[0] and "now on the CPU" in said[0]
