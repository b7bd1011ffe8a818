"""``mobilenet_v2``: MobileNetV2 backbone + global average pooling + new softmax head.

Keras has ImageNet weights for square inputs of 96, 128, 160, 192 and 224 pixels and
width multipliers 0.35-1.4; other inputs use the 224 weights (the convolutions do not
depend on the input size).

Preprocessing: 0..255 RGB scaled to -1..1 (``symmetric``, Keras' tf mode).
"""

from __future__ import annotations

from typing import Any

from micro_app.core.models.architectures import _common as c
from micro_app.core.models.architectures._transfer import build_transfer
from micro_app.core.models.card import Preprocessing

NAME = "mobilenet_v2"
DESCRIPTION = "MobileNetV2 backbone + global average pooling + new softmax head"
DEFAULT_INPUT = (224, 224)
MIN_INPUT = 32
PREPROCESSING = Preprocessing(normalisation="symmetric")
COLOUR_ORDER = "RGB"
IMAGENET_FILE: str | None = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
WEIGHT_SIDES = (96, 128, 160, 192, 224)


def imagenet_file(input_size: tuple[int, int], alpha: float = 1.0) -> str:
    side = input_size[0] if input_size[0] == input_size[1] else 224
    side = side if side in WEIGHT_SIDES else 224
    return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{side}_no_top.h5"


def build(
    num_classes: int,
    input_size: int | tuple[int, int] | None = None,
    weights: str | None = None,
    *,
    alpha: float = 1.0,
    dropout: float = 0.3,
    trainable_layers: int | None = None,
) -> Any:
    """``trainable_layers``: train only the backbone's last N layers (None: all)."""
    c.check_choice(NAME, "alpha", alpha, ALPHAS)
    size = c.check_input_size(NAME, input_size, DEFAULT_INPUT, MIN_INPUT)
    keras = c.keras_module()

    def app(**kwargs: Any) -> Any:
        return keras.applications.MobileNetV2(alpha=alpha, **kwargs)

    return build_transfer(
        NAME,
        app,
        num_classes,
        size,
        weights,
        default_input=DEFAULT_INPUT,
        min_input=MIN_INPUT,
        imagenet_file=imagenet_file(size, alpha),
        preprocess="symmetric",
        dropout=dropout,
        trainable_layers=trainable_layers,
    )
