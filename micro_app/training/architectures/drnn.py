"""``drnn`` (thesis): a deep recurrent classifier on median-filtered HSV images. Each
image row (width x 3 values) is one step of a sequence read by stacked LSTM or GRU
layers; the last state goes to a softmax.

The thesis' ODRNN tuned layers, units and learning rate with the red deer optimisation
algorithm: ``micro-app train --arch drnn --search rda`` (see ``micro_app.training.search``).

Preprocessing: 3x3 median filter, RGB -> HSV (OpenCV ranges), scaled to 0..1.
"""

from __future__ import annotations

from typing import Any

from micro_app.core.models.card import Preprocessing
from micro_app.training.architectures import _common as c

NAME = "drnn"
CELLS = ("lstm", "gru")


def build(
    num_classes: int,
    size: tuple[int, int],
    weights: None,
    *,
    layers: int = 2,
    units: int = 64,
    cell: str = "lstm",
    dropout: float = 0.0,
) -> Any:
    c.check_int(NAME, "layers", layers, 1, 8)
    c.check_int(NAME, "units", units, 1, 2048)
    c.check_choice(NAME, "cell", cell, CELLS)
    c.check_fraction(NAME, "dropout", dropout)
    kl = c.keras_module().layers
    rnn = kl.LSTM if cell == "lstm" else kl.GRU
    h, w = size
    inp = c.image_input(size)
    x = kl.Reshape((h, w * 3), name="rows_as_sequence")(inp)
    for i in range(layers):
        last = i == layers - 1
        name = c.FEATURES if last else f"{cell}{i + 1}"
        x = rnn(units, return_sequences=not last, dropout=dropout, name=name)(x)
    return c.classifier(NAME, inp, x, num_classes)


ARCHITECTURE = c.Architecture(
    NAME,
    "image rows as a sequence into stacked LSTM/GRU layers (median + HSV input)",
    default_input=(64, 64),
    min_input=8,
    preprocessing=Preprocessing(median=True, hsv=True, normalisation="unit"),
    builder=build,
    # the hyperparameter search's space: (low, high) per dimension
    search_space={"layers": (1, 3), "units": (16, 128), "learning_rate": (1e-4, 1e-2)},
)
