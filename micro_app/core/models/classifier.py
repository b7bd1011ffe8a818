"""Run a model package on a batch of images: the card's preprocessing, then one model call.

The Keras model is wrapped in a ``tf.function`` with a fixed input signature, so a batch
of any size runs the compiled graph (about 10x faster than ``model.predict`` for the small
batches of a live frame) without retracing. TensorFlow places it on the GPU when it sees
one; ``device`` says which.

A package with a classical head (SVM, k-NN, ...) runs the Keras model to its features,
then the numpy head. ``backend="onnx"`` / ``"tflite"`` (and their ``_int8`` forms) run
the package's converted weights instead of the Keras file.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from micro_app.core import preprocess as pp
from micro_app.core.models.card import ModelCard
from micro_app.core.models.package import ModelPackage
from micro_app.core.stain import StainReference, normalise_stain

log = logging.getLogger("micro_app")


def prepare_batch(images: np.ndarray, card: ModelCard) -> np.ndarray:
    """uint8 RGB ``(N, H, W, 3)`` at the model's input size -> float32 model input."""
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected a batch (N, H, W, 3), got shape {images.shape}")
    if tuple(images.shape[1:3]) != tuple(card.input_size):
        raise ValueError(f"batch is {images.shape[1:3]}, the model takes {card.input_size}")
    steps = card.preprocessing
    if steps.stain != "none":
        images = normalise_stain(images, steps.stain, _stain_reference(card))
    if steps.median or steps.sharpen or steps.hsv:
        out = np.empty_like(images)
        for i, img in enumerate(images):
            if steps.median:
                img = pp.median(img, 3)
            if steps.sharpen:
                img = pp.sharpen(img)
            if steps.hsv:
                img = pp.to_hsv(img)
            out[i] = img
        images = out
    if card.colour_order == "BGR" and not steps.hsv:
        images = images[..., ::-1]
    return pp.normalise(np.ascontiguousarray(images), steps.normalisation)


def _stain_reference(card: ModelCard) -> StainReference | None:
    ref = card.preprocessing.stain_reference
    return StainReference.from_dict(ref) if ref is not None else None


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax probabilities re-tempered: ``softmax(log(p) / T)`` (= logits / T)."""
    if temperature == 1.0 or probs.shape[1] < 2:
        return probs
    logp = np.log(np.clip(probs, 1e-12, 1.0)) / temperature
    logp -= logp.max(axis=1, keepdims=True)
    e = np.exp(logp)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def describe_device() -> str:
    """``"GPU: <name>"`` when TensorFlow sees a GPU, else ``"CPU"``."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return f"GPU: {gpus[0].name}" + (f" (+{len(gpus) - 1})" if len(gpus) > 1 else "")
    return "CPU"


class Classifier:
    """Probabilities per class for batches of uint8 images, one compiled model call each."""

    def __init__(self, package: ModelPackage, backend: str = "keras") -> None:
        import tensorflow as tf

        self.package = package
        self.card = package.card
        self.backend = backend
        self._head = package.head
        h, w = self.card.input_size
        model = package.model
        self._binary = self._head is None and int(model.output_shape[-1]) == 1
        # the penultimate features too, for the open-set check (``core.openset``)
        self.gives_features = (
            backend == "keras" and self._head is None and "open_set" in self.card.extra
        )
        if backend == "keras":
            spec = tf.TensorSpec(shape=(None, h, w, 3), dtype=tf.float32)
            if self.gives_features:
                import keras

                from micro_app.core.models.architectures._common import PREDICTIONS

                both = keras.Model(model.inputs, [model.output, model.get_layer(PREDICTIONS).input])
                model = both
            self._fn: Any = tf.function(lambda x: model(x, training=False), input_signature=[spec])
            self.device = describe_device()
        else:
            from micro_app.core.models.backends import open_runner

            self._fn = open_runner(package.path, self.card, backend)
            self.device = f"CPU ({backend})"
        log.info("model %s %s on %s", self.card.name, self.card.version, self.device)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.card.classes

    def predict(self, images: np.ndarray) -> np.ndarray:
        """``(N, C)`` float32 probabilities; an empty batch gives ``(0, C)``."""
        return self.predict_full(images)[0]

    def predict_full(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities, and the penultimate features when ``gives_features``."""
        n_cls = len(self.card.classes)
        if len(images) == 0:
            return np.zeros((0, n_cls), np.float32), None
        x = prepare_batch(images, self.card)
        out = self._fn(x)
        feats = None
        if self.gives_features:
            out, feats = out
            feats = np.asarray(feats, dtype=np.float32)
        y = np.asarray(out, dtype=np.float32)
        if self._head is not None:
            y = self._head.predict_proba(y)
        if self._binary:
            p = y.reshape(-1)
            y = np.stack([1.0 - p, p], axis=1)
        return apply_temperature(y, self.card.temperature), feats

    def warm_up(self) -> None:
        """Trace the graph once so the first live frame is not slow."""
        h, w = self.card.input_size
        self.predict(np.zeros((1, h, w, 3), np.uint8))
