"""Is a label-free calibration safe to use? Checked on the microscope's own cells.

Re-estimating a network's batch-normalisation statistics on another microscope's cells
(AdaBN) re-centres every layer on the new camera. It helps when the network's errors come
from that shift; it harms a network that already works there: the default model, trained
on PBC *and* BCCD cells, went from 0.73 to 0.36 right on BCCD's held-out half. No label
says which case a lab is in, but the model's answers on the collected cells do. Under
AdaBN that helped, the network becomes surer of the new cells (entropy minimisation is
the signal test-time adaptation methods such as TENT optimise); on BCCD it became much
less sure (mean top-class probability 0.92 -> 0.79) and changed the class of half the
cells, spreading them into classes a white-cell field rarely holds (platelet,
erythroblast). So the calibrated normalisation is kept when it changes few answers, or
when it leaves the model at least as sure as before; otherwise the parent's normalisation
stays and only the unlike-the-training-images check is re-based. Pure numpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

AGREEMENT_OK = 0.9  # calibration that changes at most this share of answers is harmless
CONFIDENCE_SLACK = 0.01  # mean top-class probability may fall this much and still pass


def class_mix(probs: np.ndarray, classes: tuple[str, ...]) -> dict[str, float]:
    """Share of cells whose top class is each class."""
    top = np.bincount(probs.argmax(axis=1), minlength=len(classes)) / max(1, len(probs))
    return {c: round(float(s), 4) for c, s in zip(classes, top, strict=True)}


def normalisation_check(
    before: np.ndarray, after: np.ndarray, classes: tuple[str, ...]
) -> dict[str, Any]:
    """Compare the parent's probabilities (``before``) with the calibrated network's
    (``after``) on the same cells; ``keep`` says whether the calibrated normalisation
    should be used, ``reason`` says why in one sentence."""
    if len(before) == 0:
        return {"keep": True, "reason": "no cells to compare"}
    agree = float(np.mean(before.argmax(1) == after.argmax(1)))
    sure_b, sure_a = float(before.max(1).mean()), float(after.max(1).mean())
    keep = agree >= AGREEMENT_OK or sure_a >= sure_b - CONFIDENCE_SLACK
    if agree >= AGREEMENT_OK:
        reason = f"it changes the class of only {1 - agree:.0%} of this microscope's cells"
    elif keep:
        reason = (
            f"it changes the class of {1 - agree:.0%} of this microscope's cells and leaves "
            f"the model as sure or surer (mean confidence {sure_b:.2f} -> {sure_a:.2f})"
        )
    else:
        reason = (
            f"re-estimated on this microscope's cells the model changed the class of "
            f"{1 - agree:.0%} of them and became less sure (mean confidence {sure_b:.2f} -> "
            f"{sure_a:.2f}), which is how calibration harms a model that already works here"
        )
    return {
        "keep": bool(keep),
        "reason": reason,
        "agreement": round(agree, 4),
        "confidence_before": round(sure_b, 4),
        "confidence_after": round(sure_a, 4),
        "class_mix_before": class_mix(before, classes),
        "class_mix_after": class_mix(after, classes),
    }
