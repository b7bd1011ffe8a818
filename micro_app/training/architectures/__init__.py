"""The Keras model builders (training code: the live path loads a package and runs it).

One builder per architecture family, with its preprocessing named beside it: the transfer
models (``keras.applications`` backbones) are the rows of one table in ``_transfer``,
EfficientNet-Lite0/1/2 the rows of one in ``_efficientnet_lite``, and each paper or thesis
network that is its own code has its own small module.

``build_model(name, num_classes, input_size=None, weights=None, **kwargs)`` builds any of
them; ``architecture(name)`` tells a model's default input size, preprocessing and
colour order without importing TensorFlow. Every model is a flat Keras functional model
whose classification layer is called ``predictions``; ``feature_extractor(model)`` cuts it
at that layer's input (AlexNet: its 4096-value ``fc7``).
"""

from __future__ import annotations

from typing import Any

from micro_app.training.arch_names import ARCH_NAMES
from micro_app.training.architectures import (
    _efficientnet_lite,
    _transfer,
    alexnet,
    basic_cnn,
    drnn,
    efficientnet_b0_attention,
    inception_v3_resnet101,
    live_cnn,
    small_cnn,
    snet,
)
from micro_app.training.architectures._common import (
    PREDICTIONS,
    PRETRAINED_ATTR,
    Architecture,
    ArchitectureError,
)

NAMES = ARCH_NAMES
REGISTRY: dict[str, Architecture] = {
    a.name: a
    for a in (
        *(m.ARCHITECTURE for m in (basic_cnn, snet, alexnet, small_cnn, drnn, live_cnn)),
        *(m.ARCHITECTURE for m in (inception_v3_resnet101, efficientnet_b0_attention)),
        *_transfer.ARCHITECTURES,
        *_efficientnet_lite.ARCHITECTURES,
    )
}


def architecture(name: str) -> Architecture:
    if name not in NAMES:
        raise ArchitectureError(f"unknown architecture {name!r}; choose one of {', '.join(NAMES)}")
    return REGISTRY[name]


def build_model(
    name: str,
    num_classes: int,
    input_size: int | tuple[int, int] | None = None,
    weights: str | None = None,
    **kwargs: Any,
) -> Any:
    """A new Keras model of architecture ``name`` (see ``NAMES``).

    ``weights``: ``None`` (random, works offline) or ``"imagenet"`` for the transfer models,
    read from the local Keras cache only (a clear error when the file is not there).
    """
    return architecture(name).build(num_classes, input_size, weights, **kwargs)


def head_weights(model: Any) -> tuple[Any, Any] | None:
    """Kernel and bias of the ``predictions`` layer (features -> logits), or None when the
    model has none that reads the features ``feature_extractor`` cuts."""
    try:
        head = model.get_layer(PREDICTIONS)
    except ValueError:
        return None
    weights = head.get_weights()
    if model.name == alexnet.NAME or len(weights) != 2 or weights[0].ndim != 2:
        return None
    return weights[0], weights[1]


def feature_extractor(model: Any) -> Any:
    """The model from image to the input of its ``predictions`` layer (AlexNet: ``fc7``)."""
    import keras

    fc7 = alexnet.FEATURE_LAYER
    if model.name == alexnet.NAME and any(layer.name == fc7 for layer in model.layers):
        return keras.Model(model.inputs, model.get_layer(fc7).output, name="alexnet_fc7")
    try:
        head = model.get_layer(PREDICTIONS)
    except ValueError as exc:
        raise ArchitectureError(
            f"model {model.name!r} has no {PREDICTIONS!r} layer to cut features at"
        ) from exc
    return keras.Model(model.inputs, head.input, name=f"{model.name}_features")


__all__ = [
    "NAMES",
    "PREDICTIONS",
    "PRETRAINED_ATTR",
    "REGISTRY",
    "Architecture",
    "ArchitectureError",
    "architecture",
    "build_model",
    "feature_extractor",
    "head_weights",
]
