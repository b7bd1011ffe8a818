"""tf.data input pipelines and the distribution strategy for training.

Images stay uint8 in memory; each batch is gathered by index, augmented (training split
only) and then prepared with the app's own ``prepare_batch`` (the card's median,
sharpening, HSV and normalisation), so training sees exactly what inference sees. With the
simulated stain and camera (``Augment.camera``), a batch is gathered from ``sources``, the
same crops at a higher resolution, and ``camera_batch`` brings it to the model input.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import numpy as np

from micro_app.core.models.card import ModelCard
from micro_app.core.models.classifier import prepare_batch
from micro_app.training.augment import Augment, augment_batch
from micro_app.training.camera_augment import camera_batch

log = logging.getLogger("micro_app")


def choose_strategy() -> tuple[Any, str]:
    """``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` is set, ``MirroredStrategy`` with
    several GPUs, else TensorFlow's default (one device)."""
    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy(), "multi-worker mirrored (TF_CONFIG)"
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy(), f"mirrored over {len(gpus)} GPUs"
    return tf.distribute.get_strategy(), f"one device ({'GPU' if gpus else 'CPU'})"


def is_chief() -> bool:
    """True unless ``TF_CONFIG`` names this process a non-chief worker."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return True
    task = json.loads(raw).get("task", {})
    kind, index = task.get("type", "chief"), int(task.get("index", 0))
    cluster = json.loads(raw).get("cluster", {})
    if "chief" in cluster:
        return kind == "chief"
    return kind == "worker" and index == 0


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    card: ModelCard,
    batch_size: int,
    *,
    augment: Augment | None = None,
    shuffle: bool = False,
    seed: int = 0,
    binary: bool = False,
    sources: np.ndarray | None = None,
) -> Any:
    """``sources``: the same images at a higher resolution, for the simulated camera."""
    import tensorflow as tf

    n = len(images)
    h, w = images.shape[1:3]
    y_all = labels.astype(np.float32 if binary else np.int32)
    y_dtype = tf.float32 if binary else tf.int32
    camera = augment.camera_params() if augment is not None else None
    if camera is not None and not camera.enabled:
        camera = None
    if camera is not None and sources is None:
        sources = images

    def gather(idx: np.ndarray, batch_seed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if camera is not None and sources is not None:
            mixed = int(np.bitwise_xor.reduce(np.abs(batch_seed.astype(np.int64))))
            return camera_batch(sources[idx], camera, mixed, (h, w)), y_all[idx]
        return images[idx], y_all[idx]

    def prep(batch: np.ndarray) -> np.ndarray:
        return prepare_batch(batch, card)

    ds = tf.data.Dataset.from_tensor_slices(np.arange(n, dtype=np.int64))
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    # each batch its own seed pair, new every epoch and the same in every run with ``seed``:
    # augmentation draws from it (stateless), however the parallel calls are scheduled
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    ds = tf.data.Dataset.zip((ds, seeds))

    def load(idx: Any, batch_seed: Any) -> tuple[Any, Any, Any]:
        x, y = tf.numpy_function(gather, [idx, batch_seed], [tf.uint8, y_dtype], stateful=False)
        return tf.ensure_shape(x, [None, h, w, 3]), tf.ensure_shape(y, [None]), batch_seed

    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    if augment is not None:
        ds = ds.map(
            lambda x, y, s: (augment_batch(x, augment, s), y, s),
            num_parallel_calls=tf.data.AUTOTUNE,
        )

    def finish(x: Any, y: Any, _seed: Any) -> tuple[Any, Any]:
        x = tf.numpy_function(prep, [x], tf.float32, stateful=False)
        return tf.ensure_shape(x, [None, h, w, 3]), y

    ds = ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def class_weights(labels: np.ndarray, n_classes: int) -> dict[int, float]:
    """Balanced weights ``n / (k * count)``; a class absent from training gets 1."""
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    n = counts.sum()
    return {k: float(n / (n_classes * c)) if c else 1.0 for k, c in enumerate(counts)}


def batch_predictor(model: Any, card: ModelCard, batch: int = 64) -> Any:
    """A function uint8 images -> ``model``'s outputs (prepared by the card), traced once
    and reused for every call (a model, or e.g. its feature extractor)."""
    import tensorflow as tf

    h, w = card.input_size
    spec = tf.TensorSpec((None, h, w, 3), tf.float32)
    fn = tf.function(lambda x: model(x, training=False), input_signature=[spec], autograph=False)
    n_out = int(model.output_shape[-1])

    def run(images: np.ndarray) -> np.ndarray:
        out = [
            np.asarray(fn(prepare_batch(images[i : i + batch], card)))
            for i in range(0, len(images), batch)
        ]
        return np.concatenate(out) if out else np.zeros((0, n_out), np.float32)

    return run


def predict_features(
    model: Any, images: np.ndarray, card: ModelCard, batch: int = 64
) -> np.ndarray:
    """Run a Keras model (e.g. a feature extractor) on uint8 images prepared by the card."""
    return batch_predictor(model, card, batch)(images)
