"""Run a package's Keras weights on TensorFlow (imported only here): one compiled
``tf.function`` with a fixed input signature, so a batch of any size runs without
retracing; the penultimate features as a second output when the package has an open-set
check. TensorFlow places it on a GPU when it sees one."""

from __future__ import annotations

from typing import Any

import numpy as np

from micro_app.core.models.architectures._common import PREDICTIONS


def describe_device() -> str:
    """``"GPU: <name>"`` when TensorFlow sees a GPU, else ``"CPU"``."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return f"GPU: {gpus[0].name}" + (f" (+{len(gpus) - 1})" if len(gpus) > 1 else "")
    return "CPU"


class TensorFlowRunner:
    backend = "tensorflow"

    def __init__(self, model: Any, input_size: tuple[int, int], features: bool) -> None:
        import tensorflow as tf

        h, w = input_size
        spec = tf.TensorSpec(shape=(None, h, w, 3), dtype=tf.float32)
        if features:
            import keras

            model = keras.Model(model.inputs, [model.output, model.get_layer(PREDICTIONS).input])
        self.gives_features = features
        self._fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])
        self.device = f"{describe_device()} (tensorflow)"

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        out = self._fn(x)
        if self.gives_features:
            probs, feats = out
            return np.asarray(probs, np.float32), np.asarray(feats, np.float32)
        return np.asarray(out, np.float32), None
