"""``small_cnn``: Conv2D 24 filters 9x9 and 48 filters 7x7, each with ReLU and 2x2 max
pooling, then one fully connected layer (softmax).

Preprocessing: RGB scaled to 0..1 (``unit``).
"""

from __future__ import annotations

from typing import Any

from micro_app.core.models.architectures import _common as c
from micro_app.core.models.card import Preprocessing

NAME = "small_cnn"
DESCRIPTION = "Conv 24 9x9 + pool, Conv 48 7x7 + pool, one fully connected layer"
DEFAULT_INPUT = (96, 96)
MIN_INPUT = 24
PREPROCESSING = Preprocessing(normalisation="unit")
COLOUR_ORDER = "RGB"
IMAGENET_FILE: str | None = None


def build(
    num_classes: int,
    input_size: int | tuple[int, int] | None = None,
    weights: str | None = None,
    *,
    dropout: float = 0.0,
) -> Any:
    num_classes = c.check_num_classes(NAME, num_classes)
    h, w = c.check_input_size(NAME, input_size, DEFAULT_INPUT, MIN_INPUT)
    c.check_no_weights(NAME, weights)
    c.check_fraction(NAME, "dropout", dropout)
    keras = c.keras_module()
    layers = keras.layers
    inp = keras.Input((h, w, 3), name="image")
    x = layers.Conv2D(24, 9, activation="relu", name="conv1")(inp)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(48, 7, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Flatten(name=c.FEATURES)(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    out = c.output_layer(num_classes)(x)
    return keras.Model(inp, out, name=NAME)
