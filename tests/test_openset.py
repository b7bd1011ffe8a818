"""The flag for cells that fit no class: the energy of the network's logits."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from micro_app.core.errors import ModelPackageError
from micro_app.core.openset import OPENSET_FILE, OpenSetStats

CENTRES = np.random.default_rng(0).normal(0, 4, (4, 32))  # three known kinds and a fourth
KERNEL = (CENTRES[:3].T * 0.05).astype(np.float32)  # a classifier that knows the three


def _clusters(seed: int = 0, n: int = 200, kinds: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(kinds), n)
    feats = CENTRES[:kinds][labels] + rng.normal(0, 1, (kinds * n, CENTRES.shape[1]))
    return feats.astype(np.float32), labels


def test_cells_of_an_unseen_kind_score_high_and_known_ones_low() -> None:
    stats = OpenSetStats.from_head(KERNEL, np.zeros(3))
    val, _ = _clusters(seed=1)  # the three known kinds, cells never trained on
    stats = stats.with_threshold(val, 95.0)
    every, kinds = _clusters(seed=2, n=100, kinds=4)
    unseen = every[kinds == 3]  # the fourth kind: no class of the classifier fits it
    assert np.mean(stats.flags(val)) == pytest.approx(0.05, abs=0.01)
    assert np.mean(stats.flags(unseen)) > 0.9
    assert np.mean(stats.flags(every[kinds < 3])) < 0.1


def test_the_check_round_trips_through_a_plain_npz_and_its_checksum(tmp_path: Path) -> None:
    feats, _ = _clusters()
    stats = OpenSetStats.from_head(KERNEL, np.ones(3)).with_threshold(feats, 90.0)
    path = stats.save(tmp_path / OPENSET_FILE)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    again = OpenSetStats.load(path, sha)
    assert again.threshold == pytest.approx(stats.threshold)
    assert np.allclose(again.scores(feats[:10]), stats.scores(feats[:10]))
    with pytest.raises(ValueError, match="features"):
        again.scores(feats[:3, :5])  # another network's features
    with pytest.raises(ModelPackageError, match="does not match the card"):
        OpenSetStats.load(path, "0" * 64)
    path.write_bytes(b"not an npz")
    with pytest.raises(ModelPackageError, match="not an open-set file"):
        OpenSetStats.load(path)


def test_a_first_version_file_is_named_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / OPENSET_FILE
    with open(path, "wb") as fh:
        np.savez(fh, centre=np.zeros(4), class_means=np.zeros((3, 2)), threshold=np.array(1.0))
    with pytest.raises(ModelPackageError, match=r"refit_open_set\.py or retrain"):
        OpenSetStats.load(path)


@pytest.mark.slow
def test_training_fits_the_check_from_the_classifier_layer(tmp_path: Path) -> None:
    """``write_open_set`` reads the package's own classifier layer and sets the threshold
    from known cells; the card records the file, its checksum and the share flagged."""
    import keras

    from micro_app.core.models.card import ModelCard
    from micro_app.core.models.package import save_package
    from micro_app.training.openset_fit import write_open_set

    inp = keras.Input((16, 16, 3))
    feats = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inp))
    out = keras.layers.Dense(3, activation="softmax", name="predictions")(feats)
    model = keras.Model(inp, out)
    kernel = (np.eye(3) - 1 / 3).astype(np.float32) * 20
    model.get_layer("predictions").set_weights([kernel, np.zeros(3, np.float32)])
    card = ModelCard("colours", "1", ("red", "green", "blue"), (16, 16))
    folder = save_package(model, card, tmp_path / "pkg")
    rng = np.random.default_rng(0)
    known = np.zeros((60, 16, 16, 3), np.uint8)
    for i in range(60):
        known[i, ..., i % 3] = 200 + rng.integers(0, 40)
    done = write_open_set(folder, known, 95.0)
    assert done is not None
    entry, flagged = done
    doc = json.loads((folder / "card.json").read_text())
    assert doc["extra"]["open_set"] == entry and flagged <= 0.1
    stats = OpenSetStats.load(folder / OPENSET_FILE, entry["sha256"])
    assert np.allclose(stats.kernel, kernel)
    grey = np.full((1, 16, 16, 3), 128, np.uint8)  # no colour: fits none of the three
    from micro_app.training.openset_fit import package_features

    assert stats.flags(package_features(folder, grey))[0]
    assert not stats.flags(package_features(folder, known[:3])).any()
