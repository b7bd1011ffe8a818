"""Run a package's Keras weights on TensorFlow (imported only here): one compiled
``tf.function`` with a fixed input signature, so a batch of any size runs without
retracing; the penultimate features as a second output when the package has an open-set
check. TensorFlow places it on a GPU when it sees one."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from micro_app.core.models.layer_names import PREDICTIONS

log = logging.getLogger("micro_app")


def describe_device() -> str:
    """``"GPU: <name>"`` when TensorFlow sees a GPU, else ``"CPU"``."""
    import tensorflow as tf

    from micro_app.core.quiet_native import native_stderr_to_log

    with native_stderr_to_log("tensorflow"):  # "failed call to cuInit" without a GPU
        gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return f"GPU: {gpus[0].name}" + (f" (+{len(gpus) - 1})" if len(gpus) > 1 else "")
    return "CPU"


class TensorFlowRunner:
    backend = "tensorflow"

    def __init__(
        self,
        model: Any,
        input_size: tuple[int, int],
        features: bool,
        on_message: Callable[[str], None] | None = None,
    ) -> None:
        import tensorflow as tf

        h, w = input_size
        self._spec = tf.TensorSpec(shape=(None, h, w, 3), dtype=tf.float32)
        if features:
            import keras

            model = keras.Model(model.inputs, [model.output, model.get_layer(PREDICTIONS).input])
        self._model = model
        self.gives_features = features
        self._fn = tf.function(
            lambda x: model(x, training=False), input_signature=[self._spec], autograph=False
        )
        self.device = f"{describe_device()} (tensorflow)"
        self._say = on_message or (lambda text: log.warning("%s", text))

    def _on_cpu(self, exc: Exception) -> None:
        """A GPU out of memory or lost: the same model on the CPU from now on."""
        import tensorflow as tf

        model = self._model

        def on_cpu(x: Any) -> Any:
            with tf.device("/CPU:0"):
                return model(x, training=False)

        old = self.device
        self._fn = tf.function(on_cpu, input_signature=[self._spec])
        self.device = "CPU (tensorflow)"
        self._say(f"{old} failed ({str(exc).strip().splitlines()[0][:120]}); now on the CPU")

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        import tensorflow as tf

        try:
            out = self._fn(x)
        except (tf.errors.ResourceExhaustedError, tf.errors.InternalError) as exc:
            if self.device.startswith("CPU"):
                raise
            self._on_cpu(exc)
            out = self._fn(x)
        if self.gives_features:
            probs, feats = out
            return np.asarray(probs, np.float32), np.asarray(feats, np.float32)
        return np.asarray(out, np.float32), None
