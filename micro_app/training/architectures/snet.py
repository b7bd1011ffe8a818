"""``snet`` (CNN + LSTM hybrid): Conv2D 32, 64, 128 (3x3), each followed by 2x2 max
pooling; flatten; Dense 128 and 64 with L2 0.01 and ReLU; the 64 values read as a
sequence of ``lstm_steps`` steps by an LSTM(32) with L2 0.01; softmax.

Preprocessing: RGB scaled to 0..1 (``unit``).
"""

from __future__ import annotations

from typing import Any

from micro_app.core.models.card import Preprocessing
from micro_app.training.architectures import _common as c

NAME = "snet"


def build(
    num_classes: int,
    size: tuple[int, int],
    weights: None,
    *,
    l2: float = 0.01,
    lstm_units: int = 32,
    lstm_steps: int = 8,
) -> Any:
    c.check_fraction(NAME, "l2", l2)
    c.check_int(NAME, "lstm_units", lstm_units, 1, 1024)
    c.check_choice(NAME, "lstm_steps", lstm_steps, (1, 2, 4, 8, 16, 32, 64))
    keras = c.keras_module()
    layers = keras.layers
    reg = keras.regularizers.L2(l2)
    x = inp = c.image_input(size)
    for i, filters in enumerate((32, 64, 128)):
        x = layers.Conv2D(filters, 3, activation="relu", name=f"conv{i + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(128, activation="relu", kernel_regularizer=reg, name="dense128")(x)
    x = layers.Dense(64, activation="relu", kernel_regularizer=reg, name="dense64")(x)
    x = layers.Reshape((lstm_steps, 64 // lstm_steps), name="as_sequence")(x)
    x = layers.LSTM(lstm_units, kernel_regularizer=reg, name=c.FEATURES)(x)
    return c.classifier(NAME, inp, x, num_classes)


ARCHITECTURE = c.Architecture(
    NAME,
    "Conv 32/64/128 + pools, Dense 128/64 (L2 0.01), LSTM(32) (L2 0.01), softmax",
    default_input=(224, 224),
    min_input=8,
    preprocessing=Preprocessing(normalisation="unit"),
    builder=build,
)
