"""The common shape of the transfer models: a ``keras.applications`` backbone without
its top, global average pooling, dropout and a new softmax head."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from micro_app.core.models.architectures import _common as c


def build_transfer(
    name: str,
    app: Callable[..., Any],
    num_classes: int,
    input_size: object,
    weights: object,
    *,
    default_input: tuple[int, int],
    min_input: int,
    imagenet_file: str,
    preprocess: str,
    dropout: float,
    trainable_layers: int | None,
) -> Any:
    """``preprocess``: ``"caffe"`` (in-model BGR + mean), ``"symmetric"`` (card: -1..1) or
    ``"none"`` (the backbone rescales itself, EfficientNet)."""
    num_classes = c.check_num_classes(name, num_classes)
    h, w = c.check_input_size(name, input_size, default_input, min_input)
    path = c.resolve_weights(name, weights, imagenet_file)
    c.check_fraction(name, "dropout", dropout)
    if trainable_layers is not None:
        c.check_int(name, "trainable_layers", trainable_layers, 0, 10000)
    keras = c.keras_module()
    inp = keras.Input((h, w, 3), name="image")
    x = c.caffe_preprocess(inp) if preprocess == "caffe" else inp
    features, base_layers = c.backbone(app, x, path, (h, w, 3))
    c.freeze_all_but_last(base_layers, trainable_layers)
    x = keras.layers.GlobalAveragePooling2D(name=c.FEATURES)(features)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    out = c.output_layer(num_classes)(x)
    return keras.Model(inp, out, name=name)
