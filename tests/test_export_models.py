"""ONNX and TFLite exports join the package only when they match Keras."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from micro_app.core.models import ModelCard, save_package
    from micro_app.training.architectures import architecture, build_model

    model = build_model("small_cnn", 3, 32)  # random weights, outputs vary with the image
    card = ModelCard(
        name="exp",
        version="0",
        classes=("a", "b", "c"),
        input_size=(32, 32),
        preprocessing=architecture("small_cnn").preprocessing,
    )
    return save_package(model, card, tmp_path_factory.mktemp("exp") / "pkg")


# the 8-bit ONNX model needs cells of the package's own (tests/test_int8.py); the int8
# TFLite export is tested in tests/test_train.py
@pytest.mark.parametrize(("to", "quantize"), [("onnx", False), ("tflite", False)])
def test_export_round_trip(package: Path, tmp_path: Path, to: str, quantize: bool) -> None:
    from micro_app.core.models import load_package
    from micro_app.core.models.classifier import Classifier
    from micro_app.training.export import TOLERANCE, TOLERANCE_INT8, export

    pkg_dir = tmp_path / "pkg"
    shutil.copytree(package, pkg_dir)
    report = export(pkg_dir, to, quantize)
    fmt = f"{to}_int8" if quantize else to
    assert report["format"] == fmt and report["checked_on"] == "32 random images"
    assert report["max_abs_diff"] <= (TOLERANCE_INT8 if quantize else TOLERANCE)
    card = json.loads((pkg_dir / "card.json").read_text())
    assert card["weights"][fmt]["sha256"] == report["sha256"]
    pkg = load_package(pkg_dir)
    images = np.random.default_rng(3).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    keras_p = Classifier(pkg).predict(images)
    other = Classifier(pkg, backend=fmt).predict(images)
    np.testing.assert_allclose(other, keras_p, atol=TOLERANCE_INT8 if quantize else TOLERANCE)


def test_missing_or_tampered_exports_are_refused(package: Path, tmp_path: Path) -> None:
    from micro_app.core.errors import ModelPackageError
    from micro_app.core.models import load_package
    from micro_app.core.models.classifier import Classifier
    from micro_app.training.export import export

    pkg_dir = tmp_path / "pkg"
    shutil.copytree(package, pkg_dir)
    with pytest.raises(ModelPackageError, match="micro-app export"):
        Classifier(load_package(pkg_dir), backend="tflite")
    export(pkg_dir, "tflite")
    (pkg_dir / "model.tflite").write_bytes(b"tampered")
    with pytest.raises(ModelPackageError, match="do not match the card"):
        Classifier(load_package(pkg_dir), backend="tflite")
