"""Run a package's ONNX weights on ONNX Runtime, on the best device this PC has.

Execution providers are tried in this order, where the installed onnxruntime has them:
TensorRT and CUDA (NVIDIA, Linux and Windows: the ``onnxruntime-gpu`` wheel), DirectML
(any GPU on Windows: ``onnxruntime-directml``), CoreML (macOS), then the CPU. A provider
that fails when the session is made, or later while running a batch (a device error, out
of memory), is dropped with one line (``on_message``) and the next one takes over; the
batch is run again there, so frames keep coming.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from micro_app.core.errors import ModelPackageError

log = logging.getLogger("micro_app")
PREFERRED = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "DmlExecutionProvider",
    "CoreMLExecutionProvider",
    "CPUExecutionProvider",
)
DEVICE_NAMES = {
    "TensorrtExecutionProvider": "GPU (TensorRT)",
    "CUDAExecutionProvider": "GPU (CUDA)",
    "DmlExecutionProvider": "GPU (DirectML)",
    "CoreMLExecutionProvider": "Apple Neural Engine/GPU (CoreML)",
    "CPUExecutionProvider": "CPU",
}
GPU_PROVIDERS = set(PREFERRED[:-1])
Message = Callable[[str], None]


def _ort() -> object:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ModelPackageError(
            "onnxruntime is not installed: pip install onnxruntime (or a GPU wheel: see the "
            "README), or choose the tensorflow backend"
        ) from exc
    return ort


def providers_to_try(requested: Sequence[str] | None = None) -> list[str]:
    """``requested`` (in its order), else every preferred provider this onnxruntime has;
    the CPU always last."""
    ort = _ort()
    available = set(ort.get_available_providers())  # type: ignore[attr-defined]
    chosen = list(requested) if requested else [p for p in PREFERRED if p in available]
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


def has_gpu_device() -> bool:
    """This onnxruntime has a GPU execution provider (the GPU itself may still fail to
    start; the runner then falls back to the CPU)."""
    ort = _ort()
    return bool(GPU_PROVIDERS & set(ort.get_available_providers()))  # type: ignore[attr-defined]


class OnnxRunner:
    """``runner(x) -> (probabilities, features or None)`` on float32 model input.
    ``backend``: ``onnx`` (FP32 weights) or ``onnx_int8`` (8-bit)."""

    def __init__(
        self,
        path: Path,
        providers: Sequence[str] | None = None,
        on_message: Message | None = None,
        threads: int = 0,
        backend: str = "onnx",
    ) -> None:
        self.backend = backend
        self._path = Path(path)
        self._threads = threads
        self._say = on_message or (lambda text: log.warning("%s", text))
        self._queue = providers_to_try(providers)
        self._session: object | None = None
        self.provider = ""
        self._open_next(None)

    @property
    def device(self) -> str:
        bits = ", 8-bit" if self.backend.endswith("int8") else ""
        return f"{DEVICE_NAMES.get(self.provider, self.provider)} (onnxruntime{bits})"

    @property
    def input_name(self) -> str:
        return str(self._input)

    @property
    def gives_features(self) -> bool:
        return len(self._outputs) > 1

    def _open_next(self, failed: Exception | None) -> None:
        ort = _ort()
        available = set(ort.get_available_providers())  # type: ignore[attr-defined]
        while self._queue:
            provider = self._queue.pop(0)
            name = DEVICE_NAMES.get(provider, provider)
            if provider not in available:  # onnxruntime would fall back to the CPU silently
                self._say(f"{name} is not in this onnxruntime; trying the next device")
                continue
            opts = ort.SessionOptions()  # type: ignore[attr-defined]
            opts.intra_op_num_threads = self._threads
            opts.log_severity_level = 3
            try:
                session = ort.InferenceSession(  # type: ignore[attr-defined]
                    str(self._path), sess_options=opts, providers=[provider]
                )
            except Exception as exc:  # a provider that cannot start: the next one
                self._say(f"{name} unavailable ({exc}); trying the next device")
                failed = exc
                continue
            if session.get_providers()[0] != provider:  # it fell back on its own
                self._say(f"{name} could not start; trying the next device")
                continue
            self._session, self.provider = session, provider
            self._input = session.get_inputs()[0].name
            self._outputs = [o.name for o in session.get_outputs()]
            return
        raise ModelPackageError(
            f"{self._path.name} runs on no device here ({failed}): re-export it or choose the "
            "tensorflow backend"
        )

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        x = np.ascontiguousarray(x, np.float32)
        while True:
            assert self._session is not None
            try:
                out = self._session.run(None, {self._input: x})  # type: ignore[attr-defined]
            except Exception as exc:  # a device error or out of memory: the next device
                if not self._queue:
                    raise
                old = DEVICE_NAMES.get(self.provider, self.provider)
                self._open_next(exc)
                self._say(f"{old} failed while running ({exc}); now on {self.device}")
                continue
            probs = np.asarray(out[0], np.float32)
            feats = np.asarray(out[1], np.float32) if len(out) > 1 else None
            return probs, feats
