"""Backend names, in one place. ``auto`` runs a package's ONNX weights on ONNX Runtime
when it has them (fast to start, any GPU through its execution providers) and the Keras
weights on TensorFlow otherwise; training and teaching always use TensorFlow."""

from __future__ import annotations

AUTO = "auto"
ONNX = "onnx"
TENSORFLOW = "tensorflow"
BACKENDS = (AUTO, ONNX, TENSORFLOW)  # what a user chooses for inference
# converted weights ``micro-app evaluate --backend`` can score as well
FORMATS = (TENSORFLOW, ONNX, "onnx_int8", "tflite", "tflite_int8")
ALIASES = {"keras": TENSORFLOW}  # the name earlier versions used


def canonical(name: str) -> str:
    return ALIASES.get(name, name)
