"""``alexnet``: five convolution layers (96 11x11/4, 256 5x5, 384, 384, 256 3x3) with
max pooling, and three fully connected layers (4096, 4096, classes) with dropout 0.5.

The thesis fine-tuned it end to end (learning rate 1e-4, batch 5, 6 epochs) and used the
4096 values of its last hidden layer (``fc7``) as features for classical classifiers:
``feature_extractor(model)``. Local response normalisation is left out (Keras has no such
layer; later work found it adds little). Preprocessing: RGB scaled to 0..1 (``unit``).
"""

from __future__ import annotations

from typing import Any

from micro_app.core.models.card import Preprocessing
from micro_app.training.architectures import _common as c

NAME = "alexnet"
FEATURE_LAYER = "fc7"


def build(
    num_classes: int,
    size: tuple[int, int],
    weights: None,
    *,
    fc_units: int = 4096,
    dropout: float = 0.5,
) -> Any:
    c.check_int(NAME, "fc_units", fc_units, 1, 16384)
    c.check_fraction(NAME, "dropout", dropout)
    layers = c.keras_module().layers
    inp = c.image_input(size)
    x = layers.Conv2D(96, 11, strides=4, activation="relu", name="conv1")(inp)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    x = layers.Conv2D(256, 5, padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool2")(x)
    x = layers.Conv2D(384, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.Conv2D(384, 3, padding="same", activation="relu", name="conv4")(x)
    x = layers.Conv2D(256, 3, padding="same", activation="relu", name="conv5")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool5")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(fc_units, activation="relu", name="fc6")(x)
    x = layers.Dropout(dropout, name="drop6")(x)
    x = layers.Dense(fc_units, activation="relu", name=FEATURE_LAYER)(x)
    x = layers.Dropout(dropout, name="drop7")(x)
    return c.classifier(NAME, inp, x, num_classes)


ARCHITECTURE = c.Architecture(
    NAME,
    "5 conv + 3 fully connected (4096, 4096, classes), dropout 0.5; fc7 features",
    default_input=(227, 227),
    min_input=67,
    preprocessing=Preprocessing(normalisation="unit"),
    builder=build,
    fine_tune={"learning_rate": 1e-4, "batch_size": 5, "epochs": 6},
)
