"""The same command, data and seed give the same model.

Python's, numpy's and TensorFlow's generators are seeded together (``keras.utils.
set_random_seed``), TensorFlow runs its deterministic kernels (``enable_op_determinism``;
on the CPU every op the app's networks use has one), the tf.data pipeline shuffles with
the seed and every augmentation draws from its batch's own seed (``training.augment``),
so parallel calls cannot reorder the random numbers. A GPU may still differ in the last
bits between runs of some kernels (TensorFlow raises rather than run a non-deterministic
one when it knows of it); ``docs/training.md`` gives what was measured here.
"""

from __future__ import annotations

import logging

log = logging.getLogger("micro_app")
_DETERMINISTIC: list[bool] = []


def seeded(seed: int) -> None:
    """Seed every generator and ask TensorFlow for deterministic ops (once per process)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if not _DETERMINISTIC:
        try:
            tf.config.experimental.enable_op_determinism()
            _DETERMINISTIC.append(True)
        except (RuntimeError, ValueError) as exc:  # pragma: no cover - depends on TF build
            log.warning("TensorFlow op determinism not available (%s)", exc)
            _DETERMINISTIC.append(False)


def determinism_note() -> str:
    if not _DETERMINISTIC:
        return "not seeded"
    if _DETERMINISTIC[0]:
        return "seeded; TensorFlow op determinism on"
    return "seeded; TensorFlow op determinism unavailable: runs may differ slightly"
