"""``basic_cnn`` (thesis): three blocks of Conv2D(128, 3x3, stride 1) + ReLU + 2x2 max
pooling, then dense layers; one sigmoid unit for two classes, softmax for more.

Preprocessing: RGB scaled to 0..1 (``unit``).
"""

from __future__ import annotations

from typing import Any

from micro_app.core.models.architectures import _common as c
from micro_app.core.models.card import Preprocessing

NAME = "basic_cnn"
DESCRIPTION = "3 x (Conv 128 3x3 + ReLU + max-pool 2x2), Dense 256, sigmoid/softmax"
DEFAULT_INPUT = (128, 128)
MIN_INPUT = 16
PREPROCESSING = Preprocessing(normalisation="unit")
COLOUR_ORDER = "RGB"
IMAGENET_FILE: str | None = None


def build(
    num_classes: int,
    input_size: int | tuple[int, int] | None = None,
    weights: str | None = None,
    *,
    filters: int = 128,
    dense_units: int = 256,
    dropout: float = 0.5,
) -> Any:
    num_classes = c.check_num_classes(NAME, num_classes)
    h, w = c.check_input_size(NAME, input_size, DEFAULT_INPUT, MIN_INPUT)
    c.check_no_weights(NAME, weights)
    c.check_int(NAME, "filters", filters, 1, 1024)
    c.check_int(NAME, "dense_units", dense_units, 1, 8192)
    c.check_fraction(NAME, "dropout", dropout)
    keras = c.keras_module()
    layers = keras.layers
    inp = keras.Input((h, w, 3), name="image")
    x = inp
    for i in range(3):
        x = layers.Conv2D(filters, 3, strides=1, padding="same", name=f"conv{i + 1}")(x)
        x = layers.ReLU(name=f"relu{i + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, activation="relu", name=c.FEATURES)(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    out = c.output_layer(num_classes, sigmoid_for_two=True)(x)
    return keras.Model(inp, out, name=NAME)
