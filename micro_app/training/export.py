"""``micro-app export MODEL --to onnx|tflite [--quantize]``: converted weights in the package.

The Keras model is converted (Keras' own exporters: tf2onnx for ONNX, the TFLite/LiteRT
converter), run on real images of the package's test split when the training dataset is
still at its recorded path (random images otherwise), and compared with Keras: the class
probabilities must agree within ``TOLERANCE`` (float32 conversions) or
``TOLERANCE_INT8`` (int8 weights). Only then is the file added to the package, with its
sha256 in the card (written atomically).

``--quantize``: TFLite dynamic-range quantisation (int8 weights of every layer, float
activations); for ONNX the 8-bit live model of ``training/quantize.py`` (static int8,
calibrated on the package's own cells, checked against the FP32 ONNX weights, which are
exported first when the package lacks them). Every package the app writes gets both ONNX
files (``export_beside_keras``).
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.core.errors import ModelPackageError
from micro_app.core.models.classifier import prepare_batch
from micro_app.core.models.layer_names import PREDICTIONS
from micro_app.core.models.package import ModelPackage, add_weights, load_package
from micro_app.core.models.runtime.onnx_runtime import OnnxRunner
from micro_app.core.models.runtime.tflite_runtime import TfliteRunner
from micro_app.training.split import SPLIT_FILE, read_split

TARGETS = ("onnx", "tflite")
TOLERANCE = 1e-4  # max abs difference of probabilities, float32 weights
TOLERANCE_INT8 = 0.1  # int8 weights: probabilities move more; top-1 agreement is reported
N_CHECK = 32


def split_test_images(pkg: ModelPackage, n: int) -> tuple[np.ndarray, str] | None:
    """Up to ``n`` test-split images at the input size, while the training data is still at
    its recorded path; None otherwise."""
    from micro_app.training.dataset import read_samples

    split_path = pkg.path / SPLIT_FILE
    if not split_path.is_file():
        return None
    split = read_split(split_path)
    root = Path(split.get("dataset", ""))
    tests = [(e["path"], e["label"]) for e in split["images"] if e["split"] == "test"]
    tests = [t for t in tests if (root / t[0]).is_file()][:n]
    if not tests:
        return None
    _, images = read_samples(root, tests, pkg.card.input_size)
    assert images is not None
    return images, f"{len(tests)} test-split images"


def check_images(pkg: ModelPackage, n: int = N_CHECK, seed: int = 0) -> tuple[np.ndarray, str]:
    """Up to ``n`` test-split images at the input size, or random images if none are found."""
    found = split_test_images(pkg, n)
    if found is not None:
        return found
    h, w = pkg.card.input_size
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8), f"{n} random images"


def probabilities(runner: Any, x: np.ndarray, batch: int) -> np.ndarray:
    """A runner's probabilities for model input ``x``, ``batch`` at a time."""
    return np.concatenate([runner(x[i : i + batch])[0] for i in range(0, len(x), batch)])


def convert(model: Any, to: str, quantize: bool, path: Path) -> None:
    if to == "onnx":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.export(str(path), format="onnx", verbose=False)
        return
    import tensorflow as tf

    kwargs = {"optimizations": [tf.lite.Optimize.DEFAULT]} if quantize else {}
    model.export(str(path), format="litert", verbose=False, **kwargs)


def export(model_dir: Path | str, to: str, quantize: bool = False) -> dict[str, Any]:
    if to not in TARGETS:
        raise ModelPackageError(f"export target must be one of {TARGETS}, got {to!r}")
    if to == "onnx":
        try:
            import onnxruntime  # noqa: F401
            import tf2onnx  # noqa: F401
        except ImportError as exc:
            raise ModelPackageError(
                'ONNX export needs tf2onnx and onnxruntime: pip install -e ".[export]"'
            ) from exc
    if to == "onnx" and quantize:
        return _onnx_int8(model_dir)
    pkg = load_package(model_dir)
    fmt = f"{to}_int8" if quantize else to
    file_name = f"model{'_int8' if quantize else ''}.{to}"
    work = Path(tempfile.mkdtemp(prefix="micro_app_export_"))
    try:
        out = work / file_name
        images, source = check_images(pkg)
        x = prepare_batch(images, pkg.card)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras: a tensor passed for the named input
            ref = np.asarray(pkg.model(x, training=False), np.float32)  # builds the graph
        model = pkg.model
        if to == "onnx" and "open_set" in pkg.card.extra and pkg.head is None:
            # the penultimate features as a second output, for the open-set check
            import keras

            features = model.get_layer(PREDICTIONS).input
            model = keras.Model(model.inputs, [model.output, features])
            model(x[:1], training=False)  # Keras exports only a model that has run
        convert(model, to, quantize, out)
        runner = OnnxRunner(out) if to == "onnx" else TfliteRunner(out)
        got = probabilities(runner, x, 8)
        if pkg.head is not None:  # compare what the app reports: class probabilities
            ref, got = pkg.head.predict_proba(ref), pkg.head.predict_proba(got)
        elif ref.shape[-1] == 1:
            ref, got = np.concatenate([1 - ref, ref], 1), np.concatenate([1 - got, got], 1)
        diff = float(np.abs(ref - got).max())
        agree = float(np.mean(ref.argmax(1) == got.argmax(1)))
        tol = TOLERANCE_INT8 if quantize else TOLERANCE
        if not diff <= tol:
            raise ModelPackageError(
                f"{fmt} outputs differ from Keras by {diff:.3g} (tolerance {tol:g}) on {source}: "
                "not added to the package"
            )
        card = add_weights(pkg.path, fmt, out, file_name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return added(
        pkg.path,
        card,
        fmt,
        max_abs_diff=diff,
        tolerance=tol,
        top1_agreement=agree,
        checked_on=source,
    )


def added(folder: Path, card: Any, fmt: str, **measured: Any) -> dict[str, Any]:
    """What ``export`` (and the 8-bit model) report about weights just added."""
    path = folder / card.weights[fmt].file
    return {
        "format": fmt,
        "file": str(path),
        "sha256": card.weights[fmt].sha256,
        "size_bytes": path.stat().st_size,
        **measured,
    }


def _onnx_int8(model_dir: Path | str) -> dict[str, Any]:
    """The 8-bit live model, from the package's FP32 ONNX weights (exported first if
    missing); compared with FP32, not Keras."""
    from micro_app.core.models.card import ModelCard
    from micro_app.training.quantize import quantize_package

    if "onnx" not in ModelCard.read(Path(model_dir)).weights:
        export(model_dir, "onnx")
    return quantize_package(model_dir)


def export_beside_keras(model_dir: Path | str, say: Any = print) -> dict[str, Any] | None:
    """ONNX weights for a package the app just wrote (training, calibration, teaching), so
    it runs on ONNX Runtime too; checked against Keras like ``export``; then the 8-bit live
    model beside them (``training/quantize.py``). Without tf2onnx the package still runs on
    TensorFlow, and this says so in one line."""
    from micro_app.training.quantize import quantize_beside_fp32

    try:
        r = export(model_dir, "onnx")
    except ModelPackageError as exc:
        say(f"no ONNX weights for {Path(model_dir).name}: {exc}")
        return None
    say(
        f"ONNX weights beside Keras: same class on {r['top1_agreement']:.0%} of "
        f"{r['checked_on']}, probabilities within {r['max_abs_diff']:.1e}"
    )
    quantize_beside_fp32(model_dir, say)
    return r
