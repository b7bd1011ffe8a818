"""``inception_v3``: InceptionV3 backbone + global average pooling + new softmax head

Preprocessing: 0..255 RGB scaled to -1..1 (``symmetric``, Keras' tf mode).
"""

from __future__ import annotations

from typing import Any

from micro_app.core.models.architectures import _common as c
from micro_app.core.models.architectures._transfer import build_transfer
from micro_app.core.models.card import Preprocessing

NAME = "inception_v3"
DESCRIPTION = "InceptionV3 backbone + global average pooling + new softmax head"
DEFAULT_INPUT = (299, 299)
MIN_INPUT = 75
PREPROCESSING = Preprocessing(normalisation="symmetric")
COLOUR_ORDER = "RGB"
IMAGENET_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"


def build(
    num_classes: int,
    input_size: int | tuple[int, int] | None = None,
    weights: str | None = None,
    *,
    dropout: float = 0.3,
    trainable_layers: int | None = None,
) -> Any:
    """``trainable_layers``: train only the backbone's last N layers (None: all)."""
    return build_transfer(
        NAME,
        c.keras_module().applications.InceptionV3,
        num_classes,
        input_size,
        weights,
        default_input=DEFAULT_INPUT,
        min_input=MIN_INPUT,
        imagenet_file=IMAGENET_FILE,
        preprocess="symmetric",
        dropout=dropout,
        trainable_layers=trainable_layers,
    )
