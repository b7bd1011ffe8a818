"""``drnn`` (thesis): a deep recurrent classifier on median-filtered HSV images. Each
image row (width x 3 values) is one step of a sequence read by stacked LSTM or GRU
layers; the last state goes to a softmax.

The thesis' ODRNN tuned layers, units and learning rate with the red deer optimisation
algorithm: ``micro-app train --arch drnn --search rda`` (see ``micro_app.training.search``).

Preprocessing: 3x3 median filter, RGB -> HSV (OpenCV ranges), scaled to 0..1.
"""

from __future__ import annotations

from typing import Any

from micro_app.core.models.architectures import _common as c
from micro_app.core.models.card import Preprocessing

NAME = "drnn"
DESCRIPTION = "image rows as a sequence into stacked LSTM/GRU layers (median + HSV input)"
DEFAULT_INPUT = (64, 64)
MIN_INPUT = 8
PREPROCESSING = Preprocessing(median=True, hsv=True, normalisation="unit")
COLOUR_ORDER = "RGB"
IMAGENET_FILE: str | None = None
CELLS = ("lstm", "gru")
# The search space of the hyperparameter search: (low, high) per dimension.
SEARCH_SPACE = {"layers": (1, 3), "units": (16, 128), "learning_rate": (1e-4, 1e-2)}


def build(
    num_classes: int,
    input_size: int | tuple[int, int] | None = None,
    weights: str | None = None,
    *,
    layers: int = 2,
    units: int = 64,
    cell: str = "lstm",
    dropout: float = 0.0,
) -> Any:
    num_classes = c.check_num_classes(NAME, num_classes)
    h, w = c.check_input_size(NAME, input_size, DEFAULT_INPUT, MIN_INPUT)
    c.check_no_weights(NAME, weights)
    c.check_int(NAME, "layers", layers, 1, 8)
    c.check_int(NAME, "units", units, 1, 2048)
    c.check_choice(NAME, "cell", cell, CELLS)
    c.check_fraction(NAME, "dropout", dropout)
    keras = c.keras_module()
    kl = keras.layers
    rnn = kl.LSTM if cell == "lstm" else kl.GRU
    inp = keras.Input((h, w, 3), name="image")
    x = kl.Reshape((h, w * 3), name="rows_as_sequence")(inp)
    for i in range(layers):
        last = i == layers - 1
        name = c.FEATURES if last else f"{cell}{i + 1}"
        x = rnn(units, return_sequences=not last, dropout=dropout, name=name)(x)
    out = c.output_layer(num_classes)(x)
    return keras.Model(inp, out, name=NAME)
