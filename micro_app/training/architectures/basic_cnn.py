"""``basic_cnn`` (thesis): three blocks of Conv2D(128, 3x3, stride 1) + ReLU + 2x2 max
pooling, then dense layers; one sigmoid unit for two classes, softmax for more.

Preprocessing: RGB scaled to 0..1 (``unit``).
"""

from __future__ import annotations

from typing import Any

from micro_app.core.models.card import Preprocessing
from micro_app.training.architectures import _common as c

NAME = "basic_cnn"


def build(
    num_classes: int,
    size: tuple[int, int],
    weights: None,
    *,
    filters: int = 128,
    dense_units: int = 256,
    dropout: float = 0.5,
) -> Any:
    c.check_int(NAME, "filters", filters, 1, 1024)
    c.check_int(NAME, "dense_units", dense_units, 1, 8192)
    c.check_fraction(NAME, "dropout", dropout)
    layers = c.keras_module().layers
    x = inp = c.image_input(size)
    for i in range(3):
        x = layers.Conv2D(filters, 3, strides=1, padding="same", name=f"conv{i + 1}")(x)
        x = layers.ReLU(name=f"relu{i + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, activation="relu", name=c.FEATURES)(x)
    x = layers.Dropout(dropout, name="dropout")(x)  # even at 0, as the thesis' model
    return c.classifier(NAME, inp, x, num_classes, sigmoid_for_two=True)


ARCHITECTURE = c.Architecture(
    NAME,
    "3 x (Conv 128 3x3 + ReLU + max-pool 2x2), Dense 256, sigmoid/softmax",
    default_input=(128, 128),
    min_input=16,
    preprocessing=Preprocessing(normalisation="unit"),
    builder=build,
)
