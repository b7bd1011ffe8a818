"""Run a model package on a batch of images: the card's preprocessing, then one model call
on a runner (``runtime``): ONNX Runtime on the best device present when the package has
ONNX weights, TensorFlow otherwise (a compiled ``tf.function``: a batch of any size runs
without retracing, about 10x faster than ``model.predict`` on a live frame's few crops).

A package with a classical head (SVM, k-NN, ...) runs the network to its features, then
the numpy head. ``backend`` chooses explicitly: ``tensorflow``, ``onnx``, ``onnx_int8``
(the 8-bit weights ``auto`` runs on a CPU), or for scoring exports ``tflite``,
``tflite_int8``. The 8-bit weights are checked against FP32 again when loaded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from micro_app.core import preprocess as pp
from micro_app.core.errors import ModelPackageError
from micro_app.core.models import int8
from micro_app.core.models.card import ModelCard
from micro_app.core.models.package import ModelPackage
from micro_app.core.models.runtime import (
    AUTO,
    ONNX,
    ONNX_INT8,
    Runner,
    canonical,
    open_runner,
    resolve,
)
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


class Classifier:
    """Probabilities per class for batches of uint8 images, one model call each, on the
    backend ``runtime.resolve`` picks (ONNX Runtime when the package has ONNX weights)."""

    def __init__(
        self,
        package: ModelPackage,
        backend: str = AUTO,
        on_message: Callable[[str], None] | None = None,
    ) -> None:
        self.package = package
        self.card = package.card
        self._head = package.head
        self._runner: Runner = self._open(backend, on_message)
        self.backend = self._runner.backend
        # features for the open-set check, when the package has one and the weights give them
        self.gives_features = self._runner.gives_features
        self._binary = self._head is None and package.n_outputs == 1
        log.info("model %s %s on %s", self.card.name, self.card.version, self.device)

    def _open(self, backend: str, on_message: Callable[[str], None] | None) -> Runner:
        """The runner ``backend`` means; the 8-bit one only when it opens and agrees with
        FP32 on its check cells here, else (``auto``) FP32, said in one line."""
        say = on_message or log.warning
        try:
            runner = open_runner(self.package, backend, on_message=on_message)
        except ModelPackageError as exc:
            if canonical(backend) != AUTO or resolve(self.card, backend) != ONNX_INT8:
                raise
            reason = f"the 8-bit model cannot run ({exc})"
        else:
            if runner.backend != ONNX_INT8:
                return runner
            disagreement = self._recheck_int8(runner)
            if disagreement is None:
                return runner
            if canonical(backend) != AUTO:
                say(f"{disagreement}: choose the onnx backend for FP32")
                return runner
            reason = disagreement
        say(f"{reason}: running FP32")
        return open_runner(self.package, ONNX, on_message=on_message)

    def _recheck_int8(self, runner: Runner) -> str | None:
        from micro_app.core.models.replay import load_replay

        card = self.card
        idx = int8.check_indices(card)
        if len(idx) == 0:
            return None
        try:
            replay = load_replay(self.package.path, card, keep=idx)
        except ModelPackageError as exc:
            return f"the 8-bit model cannot be checked ({exc})"
        cells = replay.images if replay is not None else None
        return int8.recheck(card, cells, lambda x: runner(prepare_batch(x, card))[0])

    @property
    def device(self) -> str:
        return self._runner.device

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
        y, feats = self._runner(prepare_batch(images, self.card))
        if self._head is not None:
            y = self._head.predict_proba(y)
        if self._binary:
            p = y.reshape(-1)
            y = np.stack([1.0 - p, p], axis=1)
        return apply_temperature(y, self.card.temperature), feats

    def warm_up(self) -> None:
        """Run once so the first live frame is not slow (graph tracing, device set-up)."""
        h, w = self.card.input_size
        self.predict(np.zeros((1, h, w, 3), np.uint8))
