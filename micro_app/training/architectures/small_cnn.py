"""``small_cnn``: Conv2D 24 filters 9x9 and 48 filters 7x7, each with ReLU and 2x2 max
pooling, then one fully connected layer (softmax).

Preprocessing: RGB scaled to 0..1 (``unit``).
"""

from __future__ import annotations

from typing import Any

from micro_app.core.models.card import Preprocessing
from micro_app.training.architectures import _common as c

NAME = "small_cnn"


def build(num_classes: int, size: tuple[int, int], weights: None, *, dropout: float = 0.0) -> Any:
    c.check_fraction(NAME, "dropout", dropout)
    layers = c.keras_module().layers
    inp = c.image_input(size)
    x = layers.Conv2D(24, 9, activation="relu", name="conv1")(inp)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(48, 7, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Flatten(name=c.FEATURES)(x)
    return c.classifier(NAME, inp, x, num_classes, dropout=dropout)


ARCHITECTURE = c.Architecture(
    NAME,
    "Conv 24 9x9 + pool, Conv 48 7x7 + pool, one fully connected layer",
    default_input=(96, 96),
    min_input=24,
    preprocessing=Preprocessing(normalisation="unit"),
    builder=build,
)
