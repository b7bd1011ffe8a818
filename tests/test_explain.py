"""Grad-CAM is a pure function of (package, image): heatmap at the image's size, 0..1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def conv_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from micro_app.core.models import ModelCard, save_package
    from micro_app.training.architectures import architecture, build_model

    model = build_model("small_cnn", 3, 32)
    card = ModelCard(
        name="cam",
        version="0",
        classes=("a", "b", "c"),
        input_size=(32, 32),
        preprocessing=architecture("small_cnn").preprocessing,
    )
    return save_package(model, card, tmp_path_factory.mktemp("cam") / "pkg")


def test_heatmap_has_the_image_size_and_range(conv_package: Path) -> None:
    from micro_app.core.models import load_package
    from micro_app.core.models.gradcam import gradcam, overlay

    pkg = load_package(conv_package)
    image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    cam = gradcam(pkg, image)
    assert cam.heatmap.shape == (50, 70) and cam.heatmap.dtype == np.float32
    assert cam.heatmap.min() >= 0.0 and cam.heatmap.max() <= 1.0
    assert cam.layer == "pool2"
    assert cam.class_name == pkg.card.classes[int(np.argmax(cam.probabilities))]
    again = gradcam(pkg, image)
    np.testing.assert_array_equal(again.heatmap, cam.heatmap)  # pure: same in, same out
    chosen = gradcam(pkg, image, class_index=2)
    assert chosen.class_index == 2
    shown = overlay(image, cam.heatmap)
    assert shown.shape == image.shape and shown.dtype == np.uint8
    with pytest.raises(ValueError, match="class_index"):
        gradcam(pkg, image, class_index=3)


def test_recurrent_model_falls_back_to_input_gradients(tmp_path: Path) -> None:
    from micro_app.core.models import ModelCard, load_package, save_package
    from micro_app.core.models.gradcam import gradcam
    from micro_app.training.architectures import architecture, build_model

    card = ModelCard(
        name="rnn",
        version="0",
        classes=("a", "b"),
        input_size=(16, 16),
        preprocessing=architecture("drnn").preprocessing,
    )
    pkg = load_package(save_package(build_model("drnn", 2, 16, units=8), card, tmp_path / "r"))
    cam = gradcam(pkg, np.full((40, 40, 3), 120, np.uint8))
    assert cam.layer is None and cam.heatmap.shape == (40, 40)


def test_explain_command_writes_a_png(conv_package: Path, tmp_path: Path) -> None:
    import cv2

    from micro_app.cli import main

    image = tmp_path / "cell.png"
    cv2.imwrite(str(image), np.random.default_rng(1).integers(0, 256, (64, 64, 3), np.uint8))
    out = tmp_path / "cam.png"
    assert main(["explain", str(conv_package), str(image), "--out", str(out)]) == 0
    assert cv2.imread(str(out)).shape == (64, 128, 3)
    assert main(["explain", str(conv_package), str(image), "--out", str(out), "--class", "z"]) == 2
