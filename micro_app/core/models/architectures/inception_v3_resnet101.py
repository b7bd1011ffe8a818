"""``inception_v3_resnet101``: the five-subtype paper's fusion model. The same image goes
through InceptionV3 and ResNet101; both backbones' globally pooled features (2048 +
2048) are concatenated and feed a new softmax head.

Preprocessing: each backbone gets its own inside the model (InceptionV3: -1..1;
ResNet101: Keras' caffe mode, BGR minus the ImageNet mean), so the card says ``none``
and the app feeds 0..255 RGB.
"""

from __future__ import annotations

from typing import Any

from micro_app.core.models.architectures import _common as c
from micro_app.core.models.card import Preprocessing

NAME = "inception_v3_resnet101"
DESCRIPTION = "InceptionV3 and ResNet101 pooled features concatenated, new softmax head"
DEFAULT_INPUT = (224, 224)
MIN_INPUT = 75
PREPROCESSING = Preprocessing(normalisation="none")
COLOUR_ORDER = "RGB"
IMAGENET_FILE: str | None = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
RESNET101_FILE = "resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5"


def build(
    num_classes: int,
    input_size: int | tuple[int, int] | None = None,
    weights: str | None = None,
    *,
    dropout: float = 0.3,
) -> Any:
    num_classes = c.check_num_classes(NAME, num_classes)
    h, w = c.check_input_size(NAME, input_size, DEFAULT_INPUT, MIN_INPUT)
    if weights not in (None, "imagenet"):
        raise c.ArchitectureError(f"{NAME}: weights must be None or 'imagenet', got {weights!r}")
    inc_path = c.resolve_weights(NAME, weights, IMAGENET_FILE or "")
    res_path = c.resolve_weights(NAME, weights, RESNET101_FILE)
    c.check_fraction(NAME, "dropout", dropout)
    keras = c.keras_module()
    kl = keras.layers
    inp = keras.Input((h, w, 3), name="image")
    inc_in = c.symmetric_preprocess(inp, "inception_preprocess")
    inc, _ = c.backbone(keras.applications.InceptionV3, inc_in, inc_path, (h, w, 3))
    res, _ = c.backbone(keras.applications.ResNet101, c.caffe_preprocess(inp), res_path, (h, w, 3))
    a = kl.GlobalAveragePooling2D(name="inception_v3_pool")(inc)
    b = kl.GlobalAveragePooling2D(name="resnet101_pool")(res)
    x = kl.Concatenate(name=c.FEATURES)([a, b])
    if dropout:
        x = kl.Dropout(dropout, name="dropout")(x)
    out = c.output_layer(num_classes)(x)
    return keras.Model(inp, out, name=NAME)
