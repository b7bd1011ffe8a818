"""The 8-bit live model, written into a package beside its FP32 ONNX weights.

ONNX Runtime's static quantisation (QDQ format): int8 weights per output channel, uint8
activations whose ranges are measured on the package's own cells (its replay sample: the
training cells, and after a set-up the lab's cells too; the test split of the training
data when a package has no replay sample). A quarter of those cells, at most 64, is held
back from calibration and run through both models: the 8-bit file is added only when it
gives the same top class as FP32 on at least 98 % of them, and the card records the
agreement, the largest probability difference and the FP32 probabilities, so the check is
repeated at every load (``core/models/int8.py``). EfficientNet-Lite was designed for this
(ReLU6, no squeeze-excitation).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.core.errors import ModelPackageError
from micro_app.core.models.classifier import prepare_batch
from micro_app.core.models.int8 import (
    CALIBRATION_CELLS,
    CHECK_CELLS,
    INT8,
    INT8_FILE,
    MIN_AGREEMENT,
    compare,
    split_cells,
)
from micro_app.core.models.package import ModelPackage, add_weights, load_package
from micro_app.core.models.replay import load_replay
from micro_app.core.models.runtime.onnx_runtime import OnnxRunner
from micro_app.training.export import added, probabilities, split_test_images

BATCH = 32
MIN_CELLS = 32  # fewer real cells than this: no 8-bit model (its ranges would be guesses)
METHOD = "onnxruntime static quantisation, QDQ, per-channel int8 weights, uint8 activations"


def package_cells(pkg: ModelPackage) -> tuple[np.ndarray, str, bool]:
    """Real cells of this package at its input size: (cells, where from, from its replay
    sample). Raises when it has none."""
    replay = load_replay(pkg.path, pkg.card)
    if replay is not None and len(replay) >= MIN_CELLS:
        return replay.images, "the package's replay cells", True
    found = split_test_images(pkg, n=CALIBRATION_CELLS + CHECK_CELLS)
    if found is None or len(found[0]) < MIN_CELLS:
        raise ModelPackageError(
            "no cells of its own to calibrate an 8-bit model on (no replay sample, training "
            "data not found): it runs FP32"
        )
    return found[0], found[1], False


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """onnxruntime.quantization logs hints on the root logger; a lab user needs none."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_file(float_path: Path, out_path: Path, calibration: np.ndarray) -> None:
    """Write the 8-bit model of ``float_path``, its activation ranges measured on
    ``calibration`` (float32 model input). The graph is first optimised as onnxruntime
    recommends (batch normalisation folded into the convolutions, the head's MatMul and
    Add fused): on the default model this took the 8-bit model's agreement with FP32 on 640
    PBC test crops from 0.988 to 0.995, its largest probability difference from 0.46 to
    0.26, and made it faster (scratch comparison of MinMax, percentile and entropy ranges,
    per-tensor and per-channel weights, in docs/performance.md)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    name = OnnxRunner(float_path, providers=["CPUExecutionProvider"]).input_name

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            x = calibration
            self._items = iter([{name: x[i : i + BATCH]} for i in range(0, len(x), BATCH)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._items, None)

    reader = Batches()
    optimised = out_path.with_name(out_path.stem + ".optimised.onnx")
    with _quiet_root_logger():
        quant_pre_process(str(float_path), str(optimised), skip_symbolic_shape=True)
        quantize_static(
            str(optimised),
            str(out_path),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
    optimised.unlink(missing_ok=True)


def quantize_package(model_dir: Path | str) -> dict[str, Any]:
    """Add the 8-bit model to a package that has FP32 ONNX weights; returns what was
    measured. Raises ``ModelPackageError`` (one line, nothing changed) when it cannot be
    made or disagrees with FP32."""
    pkg = load_package(model_dir, keras=False)
    card = pkg.card
    if pkg.head is not None:
        raise ModelPackageError("a package with a classical head runs on TensorFlow only")
    if "onnx" not in card.weights:
        raise ModelPackageError(f"{pkg.path} has no ONNX weights: run micro-app export first")
    cells, source, from_replay = package_cells(pkg)
    calibrate_idx, check_idx = split_cells(len(cells))
    float_path = pkg.path / card.weights["onnx"].file
    work = Path(tempfile.mkdtemp(prefix="micro_app_int8_"))
    try:
        out = work / INT8_FILE
        quantize_file(float_path, out, prepare_batch(cells[calibrate_idx], card))
        x = prepare_batch(cells[check_idx], card)
        cpu = ["CPUExecutionProvider"]
        fp32 = probabilities(OnnxRunner(float_path, providers=cpu), x, BATCH)
        got = probabilities(OnnxRunner(out, providers=cpu, backend=INT8), x, BATCH)
        agree, diff = compare(fp32, got)
        checked_on = f"{len(check_idx)} of {source} not used to calibrate"
        if agree < MIN_AGREEMENT:
            raise ModelPackageError(
                f"the 8-bit model gives FP32's class on only {agree:.0%} of {checked_on}: "
                "not added, the package runs FP32"
            )
        entry = {
            "method": METHOD,
            "calibrated_on": f"{len(calibrate_idx)} of {source}",
            "checked_on": checked_on,
            "agreement": round(agree, 4),
            "max_probability_difference": round(diff, 4),
            "from_onnx_sha256": card.weights["onnx"].sha256,
            "check": {
                "replay_indices": [int(i) for i in check_idx] if from_replay else [],
                "fp32_probabilities": np.round(fp32, 5).tolist() if from_replay else [],
            },
        }
        card = add_weights(pkg.path, INT8, out, INT8_FILE, extra=("int8", entry))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return added(
        pkg.path,
        card,
        INT8,
        max_abs_diff=diff,
        top1_agreement=agree,
        checked_on=checked_on,
        calibrated_on=entry["calibrated_on"],
    )


def quantize_beside_fp32(model_dir: Path | str, say: Callable[[str], None] = print) -> None:
    """The 8-bit model for a package the app just wrote, said in one line either way."""
    try:
        r = quantize_package(model_dir)
    except ModelPackageError as exc:
        say(f"no 8-bit model for {Path(model_dir).name}: {exc}")
        return
    say(
        f"8-bit model for the CPU: FP32's class on {r['top1_agreement']:.0%} of "
        f"{r['checked_on']}, probabilities within {r['max_abs_diff']:.2f}"
    )
