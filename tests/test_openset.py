"""The flag for cells that fit no class: Mahalanobis distance on the network's features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from micro_app.core.errors import ModelPackageError
from micro_app.core.openset import OpenSetStats

CENTRES = np.random.default_rng(0).normal(0, 4, (4, 32))  # three known kinds and a fourth


def _clusters(seed: int = 0, n: int = 200, kinds: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = CENTRES[:kinds]
    labels = np.repeat(np.arange(kinds), n)
    feats = centres[labels] + rng.normal(0, 1, (kinds * n, CENTRES.shape[1]))
    return feats.astype(np.float32), labels


def test_cells_of_an_unseen_kind_score_far_and_known_ones_near() -> None:
    feats, labels = _clusters()
    stats = OpenSetStats.fit(feats, labels, 3, dims=16)
    val, _ = _clusters(seed=1)  # the same three kinds, new cells
    stats = stats.with_threshold(val, 95.0)
    every, kinds = _clusters(seed=2, n=100, kinds=4)
    unseen = every[kinds == 3]  # the fourth kind: never trained on
    assert np.mean(stats.flags(val)) == pytest.approx(0.05, abs=0.01)
    assert np.mean(stats.flags(unseen)) > 0.9


def test_the_check_round_trips_through_a_plain_npz_and_its_checksum(tmp_path: Path) -> None:
    feats, labels = _clusters()
    stats = OpenSetStats.fit(feats, labels, 3, dims=8).with_threshold(feats, 90.0)
    path = stats.save(tmp_path / "openset.npz")
    import hashlib

    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    again = OpenSetStats.load(path, sha)
    assert again.threshold == pytest.approx(stats.threshold)
    assert np.allclose(again.scores(feats[:10]), stats.scores(feats[:10]))
    with pytest.raises(ModelPackageError, match="does not match the card"):
        OpenSetStats.load(path, "0" * 64)
    path.write_bytes(b"not an npz")
    with pytest.raises(ModelPackageError, match="not an open-set file"):
        OpenSetStats.load(path)


def test_a_class_absent_from_training_is_never_the_nearest() -> None:
    feats, labels = _clusters()
    keep = labels != 2
    stats = OpenSetStats.fit(feats[keep], labels[keep], 3, dims=8)
    scores = stats.scores(feats[~keep])
    assert np.all(np.isfinite(scores)) and scores.min() > np.median(stats.scores(feats[keep]))
