"""Classification metrics on small hand-checked examples."""

from __future__ import annotations

import numpy as np
import pytest

from micro_app.training.metrics import (
    classification_report,
    expected_calibration_error,
    roc_auc,
)


def test_report_on_a_hand_checked_example() -> None:
    y = np.array([0, 0, 0, 1, 1, 2])
    p = np.array(
        [
            [0.9, 0.05, 0.05],
            [0.6, 0.3, 0.1],
            [0.2, 0.7, 0.1],  # a 0 called 1
            [0.1, 0.8, 0.1],
            [0.3, 0.4, 0.3],  # right, but under a 0.5 threshold
            [0.1, 0.1, 0.8],
        ]
    )
    r = classification_report(y, p, ("a", "b", "c"), threshold=0.5)
    assert r["n_images"] == 6
    assert r["accuracy"] == pytest.approx(5 / 6)
    assert r["confusion_matrix"] == [[2, 1, 0], [0, 2, 0], [0, 0, 1]]
    a, b = r["per_class"]["a"], r["per_class"]["b"]
    assert a["precision"] == 1.0 and a["recall"] == pytest.approx(2 / 3)
    assert a["specificity"] == 1.0 and a["f1"] == pytest.approx(0.8)
    assert b["precision"] == pytest.approx(2 / 3) and b["specificity"] == pytest.approx(3 / 4)
    assert r["macro"]["f1"] == pytest.approx((0.8 + 0.8 + 1.0) / 3)
    assert r["weighted"]["recall"] == pytest.approx(5 / 6)
    assert r["macro_f1"] == r["macro"]["f1"]
    u = r["unidentified"]
    assert u["share_below"] == pytest.approx(1 / 6) and u["accuracy_on_rest"] == pytest.approx(
        4 / 5
    )
    assert r["per_class"]["c"]["roc_auc"] == 1.0


def test_roc_auc_counts_ties_as_half() -> None:
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1], bool)) == 0.75
    assert roc_auc(np.array([0.5, 0.5]), np.array([0, 1], bool)) == 0.5
    assert roc_auc(np.array([0.5, 0.6]), np.array([1, 1], bool)) is None


def test_expected_calibration_error() -> None:
    probs = np.array([[0.9, 0.1]] * 10)
    y = np.array([0] * 9 + [1])
    assert expected_calibration_error(probs, y) == pytest.approx(0.0, abs=1e-9)
    y_bad = np.array([0] * 5 + [1] * 5)
    assert expected_calibration_error(probs, y_bad) == pytest.approx(0.4)


def test_report_refuses_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="do not match"):
        classification_report(np.array([0, 1]), np.zeros((3, 2)), ("a", "b"), 0.5)
