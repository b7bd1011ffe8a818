"""The 8-bit live model of a package: when it may run, and its check at load.

Every package the app writes (train, calibrate, teach) gets ``model_int8.onnx`` beside its
FP32 ``model.onnx`` (``training/quantize.py``): the same network with int8 weights and
uint8 activations, calibrated on the package's own cells. On a CPU it does the same work
in about half the time. The card's ``extra["int8"]`` records what it was made from (the
sha256 of the FP32 file), on which cells it was checked against FP32, and the FP32
probabilities of those cells, so the check is repeated every time the model is loaded
(another CPU or onnxruntime can round int8 differently): if the 8-bit model then disagrees
with FP32, the app says so and runs FP32.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from micro_app.core.models.runtime.names import ONNX_INT8 as INT8

INT8_FILE = "model_int8.onnx"
MIN_AGREEMENT = 0.98  # same top class as FP32 on at least this share of the check cells
CHECK_CELLS = 64  # package cells held back from calibration to check it
CALIBRATION_CELLS = 256


def split_cells(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices of ``n`` cells: (calibration, check), disjoint, both sorted. The check gets
    ``CHECK_CELLS`` (a quarter when there are fewer than 4x that), calibration the rest up to
    ``CALIBRATION_CELLS``."""
    order = np.random.default_rng(seed).permutation(n)
    n_check = min(CHECK_CELLS, n // 4)
    return np.sort(order[n_check : n_check + CALIBRATION_CELLS]), np.sort(order[:n_check])


def compare(fp32: np.ndarray, int8: np.ndarray) -> tuple[float, float]:
    """(share of cells with the same top class, largest probability difference)."""
    if len(fp32) == 0:
        return 0.0, 1.0
    agree = float(np.mean(fp32.argmax(1) == int8.argmax(1)))
    return agree, float(np.abs(fp32 - int8).max())


def usable(card: Any) -> bool:
    """The card lists 8-bit weights made from its current FP32 ONNX weights that passed
    their check when written."""
    entry = card.extra.get("int8") or {}
    fp32 = card.weights.get("onnx")
    return (
        INT8 in card.weights
        and fp32 is not None
        and entry.get("from_onnx_sha256") == fp32.sha256
        and float(entry.get("agreement", 0.0)) >= MIN_AGREEMENT
    )


def _check(card: Any) -> dict[str, Any]:
    return dict((card.extra.get("int8") or {}).get("check") or {})


def check_indices(card: Any) -> np.ndarray:
    """The replay cells the 8-bit model was checked on when written (empty when it was
    checked on other cells, or has no check)."""
    return np.asarray(_check(card).get("replay_indices", []), int)


def recheck(
    card: Any, cells: np.ndarray | None, predict: Callable[[np.ndarray], np.ndarray]
) -> str | None:
    """Run the 8-bit model (``predict``: uint8 cells -> probabilities) on the cells it was
    checked on when written and compare with the FP32 probabilities the card recorded.
    ``cells``: the package's replay cells at ``check_indices(card)``, in that order (None
    when it has no replay sample: nothing to repeat).
    Returns None when it agrees, else one line saying why it is not used."""
    idx = check_indices(card)
    ref = np.asarray(_check(card).get("fp32_probabilities", []), np.float32)
    if cells is None or len(idx) == 0:
        return None
    if len(ref) != len(idx) or len(cells) != len(idx):
        return "the 8-bit model's check cells do not match its package"
    agree, _ = compare(ref, predict(cells))
    if agree < MIN_AGREEMENT:
        return (
            f"the 8-bit model agrees with FP32 on only {agree:.0%} of its {len(idx)} check "
            "cells on this computer"
        )
    return None
