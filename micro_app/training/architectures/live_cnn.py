"""``live_cnn``: a compact network for the live view. Small input (64x64 by default),
a strided 3x3 convolution then depthwise-separable convolutions with batch
normalisation and few filters (16-128), global average pooling and softmax: about 40k
parameters, built to classify several hundred crops per second on two CPU cores.

Preprocessing: RGB scaled to 0..1 (``unit``).
"""

from __future__ import annotations

from typing import Any

from micro_app.core.models.card import Preprocessing
from micro_app.training.architectures import _common as c

NAME = "live_cnn"
# (filters, stride) of the separable blocks
BLOCKS = ((32, 1), (64, 2), (64, 1), (128, 2), (128, 1))


def build(
    num_classes: int,
    size: tuple[int, int],
    weights: None,
    *,
    width: float = 1.0,
    dropout: float = 0.2,
) -> Any:
    if not isinstance(width, (int, float)) or isinstance(width, bool) or not 0.25 <= width <= 4:
        raise c.ArchitectureError(f"{NAME}: width must be a number 0.25..4, got {width!r}")
    c.check_fraction(NAME, "dropout", dropout)
    kl = c.keras_module().layers

    def n(filters: int) -> int:
        return max(8, round(filters * width))

    inp = c.image_input(size)
    x = kl.Conv2D(n(16), 3, strides=2, padding="same", use_bias=False, name="stem")(inp)
    x = kl.BatchNormalization(momentum=0.9, name="stem_bn")(x)
    x = kl.ReLU(name="stem_relu")(x)
    for i, (filters, stride) in enumerate(BLOCKS):
        x = kl.SeparableConv2D(
            n(filters), 3, strides=stride, padding="same", use_bias=False, name=f"sep{i + 1}"
        )(x)
        x = kl.BatchNormalization(momentum=0.9, name=f"sep{i + 1}_bn")(x)
        x = kl.ReLU(name=f"sep{i + 1}_relu")(x)
    x = kl.GlobalAveragePooling2D(name=c.FEATURES)(x)
    return c.classifier(NAME, inp, x, num_classes, dropout=dropout)


ARCHITECTURE = c.Architecture(
    NAME,
    "compact live network: 3x3/2 conv + 5 depthwise-separable convs, BN, 16-128 filters",
    default_input=(64, 64),
    min_input=32,
    preprocessing=Preprocessing(normalisation="unit"),
    builder=build,
)
