"""Re-estimate a network's batch-normalisation statistics on another microscope's cells.

AdaBN (Li et al. 2016, "Revisiting batch normalization for practical domain adaptation"):
the moving mean and variance of every batch-normalisation layer describe the training
images' activations; replacing them with the statistics of the new microscope's images
re-centres each layer on the new domain, with no labels and no change to any learned
weight. The network runs in training mode over the new cells with each layer's momentum
set so that its moving statistics become the average over all batches (weighted by
cells); every layer
normalises with the new statistics of the layers before it (the order AdaBN needs).
TensorFlow is imported by the caller (the model is a Keras model).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

BATCH = 64


def batchnorm_layers(model: Any) -> list[Any]:
    """Every batch-normalisation layer of ``model``, nested models included."""
    import keras

    return [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]


def recalibrate_batchnorm(
    model: Any,
    inputs: np.ndarray,
    *,
    batch: int = BATCH,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Set the moving statistics of ``model``'s batch-normalisation layers to those of
    ``inputs`` (float32, already prepared as the model's input). Returns, per layer, how far
    the new statistics moved: mean shift in units of the old standard deviation, and the
    ratio of new to old variance. Only the moving statistics change."""
    layers = batchnorm_layers(model)
    if not layers:
        return []
    old = [(np.array(b.moving_mean), np.array(b.moving_variance)) for b in layers]
    saved = [(b.momentum, b.trainable) for b in layers]
    order = np.random.default_rng(seed).permutation(len(inputs))
    chunks = [order[i : i + batch] for i in range(0, len(order), batch)]
    if len(chunks) > 1 and len(chunks[-1]) < batch // 4:  # a tiny last batch is noisy
        last = chunks.pop()
        chunks[-1] = np.concatenate([chunks[-1], last])
    try:
        for b in layers:
            b.trainable = True  # a frozen Keras BN layer ignores training=True
        seen = 0
        for k, idx in enumerate(chunks):
            for b in layers:  # moving = running mean of the batch statistics, by cells
                b.momentum = seen / (seen + len(idx))
            model(inputs[idx], training=True)
            seen += len(idx)
            if progress:
                progress(k + 1, len(chunks))
    finally:
        for b, (momentum, trainable) in zip(layers, saved, strict=True):
            b.momentum, b.trainable = momentum, trainable
    out = []
    for b, (mean0, var0) in zip(layers, old, strict=True):
        mean1, var1 = np.array(b.moving_mean), np.array(b.moving_variance)
        out.append(
            {
                "layer": b.name,
                "mean_shift_sd": round(
                    float(np.mean(np.abs(mean1 - mean0) / np.sqrt(var0 + 1e-6))), 4
                ),
                "variance_ratio": round(float(np.mean(var1 / (var0 + 1e-6))), 4),
            }
        )
    return out
