"""``alexnet``: five convolution layers (96 11x11/4, 256 5x5, 384, 384, 256 3x3) with
max pooling, and three fully connected layers (4096, 4096, classes) with dropout 0.5.

The thesis fine-tuned it end to end (learning rate 1e-4, batch 5, 6 epochs) and used the
4096 values of its last hidden layer (``fc7``) as features for classical classifiers:
``feature_extractor(model)``. Local response normalisation is left out (Keras has no such
layer; later work found it adds little). Preprocessing: RGB scaled to 0..1 (``unit``).
"""

from __future__ import annotations

from typing import Any

from micro_app.core.models.architectures import _common as c
from micro_app.core.models.card import Preprocessing

NAME = "alexnet"
DESCRIPTION = "5 conv + 3 fully connected (4096, 4096, classes), dropout 0.5; fc7 features"
DEFAULT_INPUT = (227, 227)
MIN_INPUT = 67
PREPROCESSING = Preprocessing(normalisation="unit")
COLOUR_ORDER = "RGB"
IMAGENET_FILE: str | None = None
FEATURE_LAYER = "fc7"
FINE_TUNE = {"learning_rate": 1e-4, "batch_size": 5, "epochs": 6}


def build(
    num_classes: int,
    input_size: int | tuple[int, int] | None = None,
    weights: str | None = None,
    *,
    fc_units: int = 4096,
    dropout: float = 0.5,
) -> Any:
    num_classes = c.check_num_classes(NAME, num_classes)
    h, w = c.check_input_size(NAME, input_size, DEFAULT_INPUT, MIN_INPUT)
    c.check_no_weights(NAME, weights)
    c.check_int(NAME, "fc_units", fc_units, 1, 16384)
    c.check_fraction(NAME, "dropout", dropout)
    keras = c.keras_module()
    layers = keras.layers
    inp = keras.Input((h, w, 3), name="image")
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
    out = c.output_layer(num_classes)(x)
    return keras.Model(inp, out, name=NAME)


def feature_extractor(model: Any) -> Any:
    """The model from image to the 4096 values of ``fc7``."""
    keras = c.keras_module()
    return keras.Model(model.inputs, model.get_layer(FEATURE_LAYER).output, name="alexnet_fc7")
