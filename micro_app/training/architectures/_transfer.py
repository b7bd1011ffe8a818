"""The transfer family: a ``keras.applications`` backbone without its top, global average
pooling, dropout and a new softmax head. Its members differ only by the application, the
input size and the preprocessing, so each is one row of ``TABLE``.

Preprocessing, named in every row (Keras applications' ``preprocess_input`` modes):

- ``CAFFE`` (VGG16, ResNet): RGB -> BGR minus the ImageNet mean, run inside the model as a
  fixed 1x1 convolution, so the card says ``none`` and the app feeds 0..255 RGB;
- ``TF`` (Inception, MobileNetV2): 0..255 RGB scaled to -1..1 by the app (``symmetric``);
- ``OWN`` (EfficientNet): 0..255 RGB as it is (``none``): the backbone rescales itself.

MobileNetV2 has ImageNet weights for square inputs of 96, 128, 160, 192 and 224 pixels and
width multipliers (``alpha``) 0.35-1.4; other inputs use the 224 weights (the convolutions
do not depend on the input size).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from micro_app.core.models.card import Preprocessing
from micro_app.training.architectures import _common as c


@dataclass(frozen=True)
class Preprocess:
    """How 0..255 RGB reaches a backbone: a layer inside the model, and what the card says."""

    in_model: Callable[[Any], Any] | None
    card: Preprocessing


CAFFE = Preprocess(c.caffe_preprocess, Preprocessing(normalisation="none"))  # BGR - mean, in model
TF = Preprocess(None, Preprocessing(normalisation="symmetric"))  # -1..1, by the app
OWN = Preprocess(None, Preprocessing(normalisation="none"))  # the backbone rescales itself

KERAS_NOTOP = "_weights_tf_dim_ordering_tf_kernels_notop.h5"  # Keras' cache name, after the model
ALPHA = (1.0, (0.35, 0.5, 0.75, 1.0, 1.3, 1.4))  # MobileNetV2's width: default, choices
MOBILENET_SIDES = (96, 128, 160, 192, 224)


def mobilenet_v2_file(size: tuple[int, int], options: Mapping[str, Any]) -> str:
    side = size[0] if size[0] == size[1] else 224
    side = side if side in MOBILENET_SIDES else 224
    alpha = float(options["alpha"])
    return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{side}_no_top.h5"


@dataclass(frozen=True)
class Transfer:
    name: str
    app: str  # the keras.applications class
    side: int  # default input, square
    min_side: int
    preprocess: Preprocess
    file: str | Callable[[tuple[int, int], Mapping[str, Any]], str] | None = None  # None: Keras'
    # keyword arguments of the application: name -> (default, allowed values)
    options: Mapping[str, tuple[Any, Sequence[Any]]] = field(default_factory=dict)

    @property
    def defaults(self) -> dict[str, Any]:
        return {key: default for key, (default, _) in self.options.items()}

    def imagenet_file(self, size: tuple[int, int], options: Mapping[str, Any]) -> str:
        if callable(self.file):
            return self.file(size, options)
        return self.file or self.name + KERAS_NOTOP


# name, keras.applications class, default side, smallest side, preprocessing[, weights file
# (default: Keras' own name), the application's options]
TABLE = (
    Transfer("vgg16", "VGG16", 224, 32, CAFFE),
    Transfer("inception_v3", "InceptionV3", 299, 75, TF),
    Transfer("resnet50", "ResNet50", 224, 32, CAFFE),
    Transfer("resnet101", "ResNet101", 224, 32, CAFFE),
    Transfer("inception_resnet_v2", "InceptionResNetV2", 299, 75, TF),
    Transfer("efficientnet_b0", "EfficientNetB0", 224, 32, OWN, "efficientnetb0_notop.h5"),
    Transfer("mobilenet_v2", "MobileNetV2", 224, 32, TF, mobilenet_v2_file, {"alpha": ALPHA}),
)


def build(
    row: Transfer,
    num_classes: int,
    size: tuple[int, int],
    weights: object,
    *,
    dropout: float = 0.3,
    trainable_layers: int | None = None,
    **app_options: Any,
) -> Any:
    """``trainable_layers``: train only the backbone's last N layers (None: all);
    ``app_options``: the row's own (MobileNetV2: ``alpha``)."""
    for key, value in app_options.items():
        if key not in row.options:
            raise c.ArchitectureError(
                f"{row.name}: unknown option {key}={value!r}; it takes "
                f"{', '.join(['dropout', 'trainable_layers', *row.options])}"
            )
        c.check_choice(row.name, key, value, row.options[key][1])
    options = {**row.defaults, **app_options}
    path = c.resolve_weights(row.name, weights, row.imagenet_file(size, options))
    c.check_fraction(row.name, "dropout", dropout)
    if trainable_layers is not None:
        c.check_int(row.name, "trainable_layers", trainable_layers, 0, 10000)
    keras = c.keras_module()
    app = functools.partial(getattr(keras.applications, row.app), **options)
    inp = c.image_input(size)
    x = row.preprocess.in_model(inp) if row.preprocess.in_model else inp
    features, base_layers = c.backbone(app, x, path, (*size, 3))
    c.freeze_all_but_last(base_layers, trainable_layers)
    x = keras.layers.GlobalAveragePooling2D(name=c.FEATURES)(features)
    return c.classifier(row.name, inp, x, num_classes, dropout=dropout)


ARCHITECTURES = tuple(
    c.Architecture(
        name=row.name,
        description=f"{row.app} backbone + global average pooling + new softmax head",
        default_input=(row.side, row.side),
        min_input=row.min_side,
        preprocessing=row.preprocess.card,
        builder=functools.partial(build, row),
        imagenet_file=row.imagenet_file((row.side, row.side), row.defaults),
    )
    for row in TABLE
)
