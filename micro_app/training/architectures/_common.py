"""What the architecture builders share: the registry row (``Architecture``), the checks,
and the layers at both ends of every model.

Every builder checks its arguments before it touches Keras, and every error quotes the
value it received. ImageNet weights are only ever read from the local Keras cache
(``~/.keras/models``, or ``$KERAS_HOME/models``): nothing is downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from micro_app.core.errors import MicroAppError
from micro_app.core.models.card import Preprocessing
from micro_app.core.models.layer_names import PREDICTIONS

FEATURES = "features"  # the last hidden representation, where a builder names one
MAX_SIDE = 1024
# set on layers whose weights a builder read from a pretrained file: fine-tuning trains the
# other layers (the new head) alone first (``micro_app.training.finetune``)
PRETRAINED_ATTR = "_micro_app_pretrained"
# Keras' "caffe" preprocessing (VGG16, ResNet): RGB -> BGR, then minus the ImageNet mean.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


class ArchitectureError(MicroAppError, ValueError):
    """An architecture name or argument is not valid, or its weights are not available."""


@dataclass(frozen=True)
class Architecture:
    """One architecture of the registry: what a model card takes from it, and its builder.

    ``build`` checks the arguments every architecture has, then calls ``builder`` with
    ``(num_classes, (height, width), weights, **options)``; the builder checks its options
    before it touches Keras."""

    name: str
    description: str
    default_input: tuple[int, int]
    min_input: int
    preprocessing: Preprocessing
    builder: Callable[..., Any]
    imagenet_file: str | None = None  # None: no ImageNet weights for it
    colour_order: str = "RGB"
    fine_tune: Mapping[str, Any] = field(default_factory=dict)  # epochs, batch_size, learning_rate
    search_space: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def build(
        self, num_classes: int, input_size: Any = None, weights: Any = None, **options: Any
    ) -> Any:
        n = check_num_classes(self.name, num_classes)
        size = check_input_size(self.name, input_size, self.default_input, self.min_input)
        if self.imagenet_file is None:
            check_no_weights(self.name, weights)
        return self.builder(n, size, weights, **options)


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded weights: ``$KERAS_HOME/models`` or ``~/.keras/models``."""
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(base) / "models"


def check_num_classes(arch: str, num_classes: object) -> int:
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
        raise ArchitectureError(f"{arch}: num_classes must be an integer >= 2, got {num_classes!r}")
    return num_classes


def check_input_size(
    arch: str, input_size: object, default: tuple[int, int], minimum: int
) -> tuple[int, int]:
    """``None`` -> default; ``n`` -> ``(n, n)``; ``(h, w)`` checked against ``minimum``."""
    if input_size is None:
        return default
    size: Sequence[object]
    if isinstance(input_size, int) and not isinstance(input_size, bool):
        size = (input_size, input_size)
    elif isinstance(input_size, (tuple, list)) and len(input_size) == 2:
        size = input_size
    else:
        raise ArchitectureError(
            f"{arch}: input_size must be an integer or (height, width), got {input_size!r}"
        )
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in size):
        raise ArchitectureError(f"{arch}: input_size must hold integers, got {input_size!r}")
    h, w = int(size[0]), int(size[1])  # type: ignore[arg-type]
    if not (minimum <= h <= MAX_SIDE and minimum <= w <= MAX_SIDE):
        raise ArchitectureError(
            f"{arch}: input_size must be {minimum}..{MAX_SIDE} pixels per side, got {input_size!r}"
        )
    return h, w


def check_choice(arch: str, what: str, value: object, choices: Sequence[object]) -> None:
    if value not in choices:
        raise ArchitectureError(f"{arch}: {what} must be one of {list(choices)}, got {value!r}")


def check_int(arch: str, what: str, value: object, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ArchitectureError(f"{arch}: {what} must be an integer {lo}..{hi}, got {value!r}")
    return value


def check_fraction(arch: str, what: str, value: object) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 1:
        raise ArchitectureError(f"{arch}: {what} must be a number in [0, 1), got {value!r}")
    return float(value)


def check_no_weights(arch: str, weights: object) -> None:
    """For architectures Keras has no pretrained weights for."""
    if weights is not None:
        raise ArchitectureError(
            f"{arch}: Keras has no pretrained weights for this architecture, so weights must "
            f"be None, got {weights!r}"
        )


def resolve_weights(
    arch: str, weights: object, cache_file: str, hint: str | None = None
) -> Path | None:
    """``None`` -> ``None``; ``"imagenet"`` -> the cached file; a path -> that file.

    Raises a one-line error when the ImageNet file is not in the local cache: it is never
    downloaded. ``hint``: how to put it there, when the default advice does not apply.
    """
    if weights is None:
        return None
    if weights == "imagenet":
        path = keras_cache_dir() / cache_file
        if not path.is_file():
            advice = hint or (
                f"copy {cache_file} there from a machine that has it, or train with weights=None"
            )
            raise ArchitectureError(
                f"{arch}: ImageNet weights are not in the local Keras cache ({path}); {advice}"
            )
        return path
    if isinstance(weights, (str, Path)) and Path(weights).is_file():
        return Path(weights)
    raise ArchitectureError(
        f"{arch}: weights must be None, 'imagenet' or an existing weights file, got {weights!r}"
    )


def keras_module() -> Any:
    import keras

    return keras


def image_input(size: tuple[int, int]) -> Any:
    """The model's input: ``(height, width, 3)`` crops, named ``image``."""
    return keras_module().Input((*size, 3), name="image")


def classifier(
    name: str,
    inp: Any,
    x: Any,
    num_classes: int,
    *,
    dropout: float = 0.0,
    sigmoid_for_two: bool = False,
) -> Any:
    """The model from ``inp`` to the ``predictions`` layer on features ``x``: dropout (when
    not 0), then softmax over the classes, or one sigmoid unit for two classes when asked
    (basic_cnn)."""
    keras = keras_module()
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    if sigmoid_for_two and num_classes == 2:
        out = keras.layers.Dense(1, activation="sigmoid", name=PREDICTIONS)(x)
    else:
        out = keras.layers.Dense(num_classes, activation="softmax", name=PREDICTIONS)(x)
    return keras.Model(inp, out, name=name)


def caffe_preprocess(x: Any) -> Any:
    """Keras' caffe mode inside the model: a fixed 1x1 convolution that swaps RGB to BGR
    and subtracts the ImageNet mean, so the card can say normalisation ``none``."""
    import numpy as np

    keras = keras_module()
    kernel = np.zeros((1, 1, 3, 3), np.float32)
    for i in range(3):
        kernel[0, 0, i, 2 - i] = 1.0
    bias = -np.array(CAFFE_MEAN_BGR, np.float32)
    layer = keras.layers.Conv2D(3, 1, name="caffe_preprocess", trainable=False)
    y = layer(x)
    layer.set_weights([kernel, bias])
    return y


def symmetric_preprocess(x: Any, name: str) -> Any:
    """Keras' tf mode inside the model: 0..255 -> -1..1."""
    return keras_module().layers.Rescaling(1.0 / 127.5, offset=-1.0, name=name)(x)


def backbone(
    app: Callable[..., Any],
    x: Any,
    weights_path: Path | None,
    input_shape: tuple[int, int, int],
    **kwargs: Any,
) -> tuple[Any, list[Any]]:
    """Build a ``keras.applications`` backbone inline on tensor ``x`` (so the model stays
    flat and Grad-CAM reaches its layers); returns its output and its own layers.

    Pretrained weights are loaded into a stand-alone copy from the local file and copied
    layer by layer, because the inline copy shares the graph with the layers before it.
    """
    before = {id(op) for op in _ops_before(x)}
    base = app(include_top=False, weights=None, input_tensor=x, **kwargs)
    layers = [
        layer
        for layer in base.layers
        if id(layer) not in before and type(layer).__name__ != "InputLayer"
    ]
    if weights_path is not None:
        source = app(
            include_top=False, weights=str(weights_path), input_shape=input_shape, **kwargs
        )
        src = [layer for layer in source.layers if layer.weights]
        dst = [layer for layer in layers if layer.weights]
        if len(src) != len(dst):
            raise ArchitectureError(
                f"pretrained backbone has {len(src)} weighted layers, the model {len(dst)}: "
                "report this as a bug"
            )
        for s, d in zip(src, dst, strict=True):
            d.set_weights(s.get_weights())
        mark_pretrained(layers)
    return base.output, layers


def mark_pretrained(layers: list[Any]) -> None:
    """Tag layers whose weights came from a pretrained file."""
    for layer in layers:
        setattr(layer, PRETRAINED_ATTR, True)


def _ops_before(x: Any) -> list[Any]:
    """The layers that produced tensor ``x`` (walked back to the model input)."""
    seen: list[Any] = []
    stack = [x]
    while stack:
        t = stack.pop()
        history = getattr(t, "_keras_history", None)
        if history is None:
            continue
        op = history[0]
        if any(op is s for s in seen):
            continue
        seen.append(op)
        for node in getattr(op, "_inbound_nodes", []):
            stack.extend(node.input_tensors)
    return seen


def freeze_all_but_last(layers: list[Any], n_trainable: int | None) -> None:
    """Freeze a backbone except its last ``n_trainable`` layers (``None``: all trainable)."""
    if n_trainable is None:
        return
    cut = max(0, len(layers) - n_trainable)
    for i, layer in enumerate(layers):
        layer.trainable = i >= cut
