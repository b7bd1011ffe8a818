"""Backend names, in one place. ``auto`` runs a package's ONNX weights on ONNX Runtime
when it has them (fast to start, any GPU through its execution providers): its 8-bit
weights on a computer without a GPU, FP32 with one; the Keras weights on TensorFlow
otherwise. Training and teaching always use TensorFlow."""

from __future__ import annotations

AUTO = "auto"
ONNX = "onnx"
ONNX_INT8 = "onnx_int8"
TENSORFLOW = "tensorflow"
BACKENDS = (AUTO, ONNX, ONNX_INT8, TENSORFLOW)  # what a user chooses for inference
# converted weights ``micro-app evaluate --backend`` can score as well
FORMATS = (TENSORFLOW, ONNX, ONNX_INT8, "tflite", "tflite_int8")
ALIASES = {"keras": TENSORFLOW}  # the name earlier versions used


def canonical(name: str) -> str:
    return ALIASES.get(name, name)
