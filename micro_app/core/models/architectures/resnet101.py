"""``resnet101``: ResNet101 backbone + global average pooling + new softmax head

Preprocessing: Keras' caffe mode (RGB -> BGR, minus the ImageNet mean) runs inside the
model as a fixed 1x1 convolution, so the card says ``none`` and the app feeds 0..255 RGB.
"""

from __future__ import annotations

from typing import Any

from micro_app.core.models.architectures import _common as c
from micro_app.core.models.architectures._transfer import build_transfer
from micro_app.core.models.card import Preprocessing

NAME = "resnet101"
DESCRIPTION = "ResNet101 backbone + global average pooling + new softmax head"
DEFAULT_INPUT = (224, 224)
MIN_INPUT = 32
PREPROCESSING = Preprocessing(normalisation="none")
COLOUR_ORDER = "RGB"
IMAGENET_FILE = "resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5"


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
        c.keras_module().applications.ResNet101,
        num_classes,
        input_size,
        weights,
        default_input=DEFAULT_INPUT,
        min_input=MIN_INPUT,
        imagenet_file=IMAGENET_FILE,
        preprocess="caffe",
        dropout=dropout,
        trainable_layers=trainable_layers,
    )
