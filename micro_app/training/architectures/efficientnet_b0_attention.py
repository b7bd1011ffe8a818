"""``efficientnet_b0_attention``: EfficientNetB0 whose feature map (one token per
position) passes multi-head self-attention (with a residual connection and layer
normalisation) before global pooling; then Dense 256 and 128 with LeakyReLU, batch
normalisation and dropout 0.5 and 0.3; softmax.

With pretrained weights only the backbone's last 20 layers train (``trainable_layers``);
from random weights (``weights=None``) the whole backbone trains, since there is
nothing learned to keep.

Preprocessing: 0..255 RGB as it is (``none``): EfficientNet rescales inside the model.
"""

from __future__ import annotations

from typing import Any

from micro_app.core.models.card import Preprocessing
from micro_app.training.architectures import _common as c

NAME = "efficientnet_b0_attention"
IMAGENET_FILE = "efficientnetb0_notop.h5"  # the backbone's, as the efficientnet_b0 row's


def build(
    num_classes: int,
    size: tuple[int, int],
    weights: object,
    *,
    heads: int = 4,
    key_dim: int = 64,
    trainable_layers: int | None = 20,
) -> Any:
    """``trainable_layers`` applies only with pretrained weights (None: all trainable)."""
    path = c.resolve_weights(NAME, weights, IMAGENET_FILE)
    c.check_int(NAME, "heads", heads, 1, 64)
    c.check_int(NAME, "key_dim", key_dim, 1, 1024)
    if trainable_layers is not None:
        c.check_int(NAME, "trainable_layers", trainable_layers, 0, 10000)
    keras = c.keras_module()
    kl = keras.layers
    inp = c.image_input(size)
    fmap, base_layers = c.backbone(keras.applications.EfficientNetB0, inp, path, (*size, 3))
    if path is not None:
        c.freeze_all_but_last(base_layers, trainable_layers)
    fh, fw, ch = (int(d) for d in fmap.shape[1:])
    tokens = kl.Reshape((fh * fw, ch), name="tokens")(fmap)
    att = kl.MultiHeadAttention(heads, key_dim, name="self_attention")(tokens, tokens)
    x = kl.Add(name="attention_residual")([tokens, att])
    x = kl.LayerNormalization(name="attention_norm")(x)
    x = kl.GlobalAveragePooling1D(name="pool")(x)
    for units, drop in ((256, 0.5), (128, 0.3)):
        x = kl.Dense(units, name=f"dense{units}")(x)
        x = kl.LeakyReLU(name=f"leaky{units}")(x)
        x = kl.BatchNormalization(name=f"bn{units}")(x)
        x = kl.Dropout(drop, name=c.FEATURES if units == 128 else f"drop{units}")(x)
    return c.classifier(NAME, inp, x, num_classes)


ARCHITECTURE = c.Architecture(
    NAME,
    "EfficientNetB0 + multi-head self-attention + Dense 256/128 (LeakyReLU, BN, dropout)",
    default_input=(224, 224),
    min_input=32,
    preprocessing=Preprocessing(normalisation="none"),
    builder=build,
    imagenet_file=IMAGENET_FILE,
)
