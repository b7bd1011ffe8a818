"""``inception_v3_resnet101``: the five-subtype paper's fusion model. The same image goes
through InceptionV3 and ResNet101; both backbones' globally pooled features (2048 +
2048) are concatenated and feed a new softmax head.

Preprocessing: each backbone gets its own inside the model (InceptionV3: -1..1;
ResNet101: Keras' caffe mode, BGR minus the ImageNet mean), so the card says ``none``
and the app feeds 0..255 RGB.
"""

from __future__ import annotations

from typing import Any

from micro_app.core.models.card import Preprocessing
from micro_app.training.architectures import _common as c
from micro_app.training.architectures._transfer import KERAS_NOTOP

NAME = "inception_v3_resnet101"
INCEPTION_V3_FILE = "inception_v3" + KERAS_NOTOP
RESNET101_FILE = "resnet101" + KERAS_NOTOP


def build(num_classes: int, size: tuple[int, int], weights: object, *, dropout: float = 0.3) -> Any:
    if weights not in (None, "imagenet"):
        raise c.ArchitectureError(f"{NAME}: weights must be None or 'imagenet', got {weights!r}")
    inc_path = c.resolve_weights(NAME, weights, INCEPTION_V3_FILE)
    res_path = c.resolve_weights(NAME, weights, RESNET101_FILE)
    c.check_fraction(NAME, "dropout", dropout)
    keras = c.keras_module()
    kl = keras.layers
    inp = c.image_input(size)
    shape = (*size, 3)
    inc_in = c.symmetric_preprocess(inp, "inception_preprocess")
    inc, _ = c.backbone(keras.applications.InceptionV3, inc_in, inc_path, shape)
    res, _ = c.backbone(keras.applications.ResNet101, c.caffe_preprocess(inp), res_path, shape)
    a = kl.GlobalAveragePooling2D(name="inception_v3_pool")(inc)
    b = kl.GlobalAveragePooling2D(name="resnet101_pool")(res)
    x = kl.Concatenate(name=c.FEATURES)([a, b])
    return c.classifier(NAME, inp, x, num_classes, dropout=dropout)


ARCHITECTURE = c.Architecture(
    NAME,
    "InceptionV3 and ResNet101 pooled features concatenated, new softmax head",
    default_input=(224, 224),
    min_input=75,
    preprocessing=Preprocessing(normalisation="none"),
    builder=build,
    imagenet_file=INCEPTION_V3_FILE,
)
