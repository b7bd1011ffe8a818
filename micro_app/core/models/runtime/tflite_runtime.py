"""Run a package's TFLite weights (``micro-app export --to tflite``) on LiteRT when it is
installed, else on TensorFlow's own interpreter; for scoring exports, not the live view."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np


class TfliteRunner:
    backend = "tflite"
    device = "CPU (tflite)"
    gives_features = False

    def __init__(self, path: Path) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            import tensorflow as tf

            Interpreter = tf.lite.Interpreter
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TF's interpreter warns that it is deprecated
            self._interp: Any = Interpreter(model_path=str(path))
        self._in = self._interp.get_input_details()[0]["index"]
        self._out = self._interp.get_output_details()[0]["index"]
        self._batch = -1

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        x = np.ascontiguousarray(x, np.float32)
        if len(x) != self._batch:
            self._interp.resize_tensor_input(self._in, x.shape, strict=False)
            self._interp.allocate_tensors()
            self._batch = len(x)
        self._interp.set_tensor(self._in, x)
        self._interp.invoke()
        return np.array(self._interp.get_tensor(self._out), np.float32), None
