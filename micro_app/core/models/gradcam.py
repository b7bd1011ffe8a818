"""Grad-CAM: where in the image the model looked for its answer.

``gradcam(package, image)`` is pure: an RGB uint8 image of any size in, a heatmap
(float32 0..1, the image's size) out, for the predicted class or a chosen one. The
heatmap weights the last convolutional feature map by the mean gradient of the class
score (Selvaraju et al. 2017). A model without a convolutional feature map (``drnn``)
gets the gradient magnitude at the input instead. ``overlay`` blends a heatmap over the
image for display; the window and ``micro-app explain`` use the same two functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from micro_app.core.errors import ModelPackageError
from micro_app.core.models.classifier import prepare_batch
from micro_app.core.models.package import ModelPackage


@dataclass(frozen=True)
class GradCam:
    heatmap: np.ndarray  # (H, W) float32 0..1 at the image's size
    class_index: int
    class_name: str
    probabilities: np.ndarray  # (C,) float32
    layer: str | None  # the feature map used; None: input gradients


def find_target_layer(model: Any) -> str | None:
    """The last layer with a 2-D feature map (rank-4 output), or ``None`` if there is none."""
    for layer in reversed(model.layers):
        if type(layer).__name__ == "InputLayer":
            continue
        shape = getattr(layer, "output", None)
        shape = getattr(shape, "shape", None)
        if shape is not None and len(shape) == 4 and (shape[1] or 0) * (shape[2] or 0) > 1:
            return str(layer.name)
    return None


def resize_to_input(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an RGB image to ``(height, width)`` the way crops are resized for the model."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    interp = cv2.INTER_AREA if image.shape[0] > h else cv2.INTER_LINEAR
    return cv2.resize(image, (w, h), interpolation=interp)


def gradcam(
    package: ModelPackage,
    image: np.ndarray,
    class_index: int | None = None,
    layer: str | None = None,
) -> GradCam:
    """Grad-CAM of ``package``'s model on one RGB uint8 image (any size)."""
    import keras
    import tensorflow as tf

    if package.head is not None:
        raise ModelPackageError(
            "Grad-CAM needs a Keras classifier, and this package classifies with a classical "
            f"head ({package.head.name}): explain the CNN it was built on instead"
        )
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
    card, model = package.card, package.model
    n_cls = len(card.classes)
    if class_index is not None and not 0 <= class_index < n_cls:
        raise ValueError(f"class_index must be 0..{n_cls - 1}, got {class_index}")
    target = layer or find_target_layer(model)
    x = tf.convert_to_tensor(prepare_batch(resize_to_input(image, card.input_size)[None], card))
    with tf.GradientTape() as tape:
        if target is None:
            tape.watch(x)
            fmap, preds = x, model(x, training=False)
        else:
            grad_model = keras.Model(model.inputs, [model.get_layer(target).output, model.output])
            fmap, preds = grad_model(x, training=False)
        if preds.shape[-1] == 1:  # one sigmoid unit for two classes
            preds = tf.concat([1.0 - preds, preds], axis=-1)
        probs = preds[0]
        idx = int(tf.argmax(probs)) if class_index is None else class_index
        score = probs[idx]
    grads = tape.gradient(score, fmap)
    if target is None:
        cam = tf.reduce_max(tf.abs(grads[0]), axis=-1)
    else:
        weights = tf.reduce_mean(grads[0], axis=(0, 1))
        cam = tf.nn.relu(tf.reduce_sum(fmap[0] * weights, axis=-1))
    heat = np.asarray(cam, np.float32)
    top = float(heat.max())
    heat = heat / top if top > 0 else np.zeros_like(heat)
    full = cv2.resize(heat, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    return GradCam(
        heatmap=np.clip(full, 0.0, 1.0).astype(np.float32),
        class_index=idx,
        class_name=card.classes[idx],
        probabilities=np.asarray(probs, np.float32),
        layer=target,
    )


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The heatmap in the JET colour map blended over the RGB image (uint8 RGB)."""
    if heatmap.shape != image.shape[:2]:
        raise ValueError(f"heatmap {heatmap.shape} does not match image {image.shape[:2]}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be 0..1, got {alpha}")
    grey = np.round(np.clip(heatmap, 0.0, 1.0) * 255).astype(np.uint8)
    colour = cv2.applyColorMap(grey, cv2.COLORMAP_JET)
    colour = cv2.cvtColor(colour, cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(image, 1.0 - alpha, colour, alpha, 0.0)
