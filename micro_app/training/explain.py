"""``micro-app explain MODEL IMAGE --out PNG``: a Grad-CAM heatmap over the image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from micro_app.core.atomic import atomic_write_bytes
from micro_app.core.errors import InputError
from micro_app.core.imageio import read_image_rgb
from micro_app.core.models.gradcam import gradcam, overlay
from micro_app.core.models.package import load_package


def explain(
    model_dir: Path | str,
    image_path: Path | str,
    out: Path | str,
    class_name: str | None = None,
    alpha: float = 0.45,
) -> dict[str, Any]:
    pkg = load_package(model_dir)
    image = read_image_rgb(Path(image_path))
    index = None
    if class_name is not None:
        if class_name not in pkg.card.classes:
            raise InputError(
                f"class {class_name!r} is not in the model's classes {list(pkg.card.classes)}"
            )
        index = pkg.card.classes.index(class_name)
    cam = gradcam(pkg, image, index)
    picture = np.concatenate([image, overlay(image, cam.heatmap, alpha)], axis=1)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    if not ok:
        raise InputError(f"cannot encode {out} as PNG")
    atomic_write_bytes(Path(out), buf.tobytes())
    return {
        "image": str(image_path),
        "out": str(out),
        "class": cam.class_name,
        "probability": float(cam.probabilities[cam.class_index]),
        "layer": cam.layer,
    }
