"""One builder per architecture, one module each, with its preprocessing named beside it.

``build_model(name, num_classes, input_size=None, weights=None, **kwargs)`` builds any of
them; ``architecture(name)`` tells a model's default input size, preprocessing and
colour order without importing TensorFlow. Every model is a flat Keras functional model
whose classification layer is called ``predictions``; ``feature_extractor(model)`` cuts it
at that layer's input (AlexNet: its 4096-value ``fc7``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from micro_app.core.arch_names import ARCH_NAMES
from micro_app.core.models.architectures._common import PREDICTIONS, ArchitectureError
from micro_app.core.models.card import Preprocessing

NAMES = ARCH_NAMES


@dataclass(frozen=True)
class Architecture:
    name: str
    description: str
    default_input: tuple[int, int]
    min_input: int
    preprocessing: Preprocessing
    colour_order: str
    imagenet_file: str | None  # None: Keras has no ImageNet weights for it
    module: ModuleType

    def build(
        self, num_classes: int, input_size: Any = None, weights: Any = None, **kw: Any
    ) -> Any:
        return self.module.build(num_classes, input_size, weights, **kw)


def architecture(name: str) -> Architecture:
    if name not in NAMES:
        raise ArchitectureError(f"unknown architecture {name!r}; choose one of {', '.join(NAMES)}")
    mod = importlib.import_module(f"{__name__}.{name}")
    return Architecture(
        name=mod.NAME,
        description=mod.DESCRIPTION,
        default_input=tuple(mod.DEFAULT_INPUT),
        min_input=mod.MIN_INPUT,
        preprocessing=mod.PREPROCESSING,
        colour_order=mod.COLOUR_ORDER,
        imagenet_file=mod.IMAGENET_FILE,
        module=mod,
    )


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
    if model.name == "alexnet" or len(weights) != 2 or weights[0].ndim != 2:
        return None
    return weights[0], weights[1]


def feature_extractor(model: Any) -> Any:
    """The model from image to the input of its ``predictions`` layer (AlexNet: ``fc7``)."""
    import keras

    if model.name == "alexnet" and any(layer.name == "fc7" for layer in model.layers):
        return keras.Model(model.inputs, model.get_layer("fc7").output, name="alexnet_fc7")
    try:
        head = model.get_layer(PREDICTIONS)
    except ValueError as exc:
        raise ArchitectureError(
            f"model {model.name!r} has no {PREDICTIONS!r} layer to cut features at"
        ) from exc
    return keras.Model(model.inputs, head.input, name=f"{model.name}_features")


__all__ = [
    "NAMES",
    "Architecture",
    "ArchitectureError",
    "architecture",
    "build_model",
    "feature_extractor",
]
