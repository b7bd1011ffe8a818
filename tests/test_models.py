"""Model packages: the card is checked against the weights, and loading runs no code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_CLASSES, build_colour_model

from micro_app.core.errors import ModelPackageError
from micro_app.core.models import ModelCard, load_package, save_package, sha256_file
from micro_app.core.models.classifier import Classifier, prepare_batch

pytestmark = pytest.mark.slow


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "pkg"
    shutil.copytree(src, dst)
    return dst


def _edit_card(folder: Path, **changes: object) -> None:
    path = folder / "card.json"
    card = json.loads(path.read_text())
    card.update(changes)
    path.write_text(json.dumps(card))


def test_round_trip_keeps_card_and_predictions(tiny_package: Path) -> None:
    pkg = load_package(tiny_package)
    assert pkg.card.classes == TINY_CLASSES
    assert pkg.card.input_size == (32, 32)
    assert pkg.card.weights["keras"].sha256 == sha256_file(tiny_package / "model.keras")
    clf = Classifier(pkg)
    batch = np.zeros((3, 32, 32, 3), np.uint8)
    for k in range(3):
        batch[k, ..., k] = 200
    probs = clf.predict(batch)
    assert probs.shape == (3, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert list(probs.argmax(axis=1)) == [0, 1, 2]
    assert clf.predict(np.zeros((0, 32, 32, 3), np.uint8)).shape == (0, 3)
    assert clf.device.startswith(("CPU", "GPU")) and clf.device.endswith("(tensorflow)")


def test_corrupt_weights_are_refused(tiny_package: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_package, tmp_path)
    weights = folder / "model.keras"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelPackageError, match="do not match the card"):
        load_package(folder)
    # even with a checksum that matches the damage, a broken archive is a clear error
    weights.write_bytes(b"not a keras archive")
    card = json.loads((folder / "card.json").read_text())
    card["weights"]["keras"]["sha256"] = sha256_file(weights)
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelPackageError, match="cannot load"):
        load_package(folder)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"classes": ["a", "b", "c", "d"]}, "4 classes"),
        ({"input_size": [64, 64]}, "card says"),
        ({"classes": ["a", "a", "b"]}, "duplicates"),
        ({"scope": "slide"}, "scope"),
        ({"colour": "RGB"}, "unknown keys"),
        ({"unidentified_threshold": 1.5}, "unidentified_threshold"),
    ],
)
def test_card_that_does_not_match_is_refused(
    tiny_package: Path, tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    folder = _copy(tiny_package, tmp_path)
    _edit_card(folder, **changes)
    with pytest.raises(ModelPackageError, match=message):
        load_package(folder)


def test_missing_card_or_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelPackageError, match="does not exist"):
        load_package(tmp_path / "nope")
    with pytest.raises(ModelPackageError, match=r"no card\.json"):
        load_package(tmp_path)
    (tmp_path / "card.json").write_text("{not json")
    with pytest.raises(ModelPackageError, match="not valid JSON"):
        load_package(tmp_path)


def test_lambda_layer_cannot_run_code_on_load(tmp_path: Path) -> None:
    import keras

    inp = keras.Input((16, 16, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(x))
    card = ModelCard(name="evil", version="1", classes=("a", "b"), input_size=(16, 16))
    folder = save_package(model, card, tmp_path / "evil")
    with pytest.raises(ModelPackageError, match="cannot load"):
        load_package(folder)


def test_save_never_replaces_an_existing_package(tiny_package: Path) -> None:
    card = ModelCard.read(tiny_package)
    with pytest.raises(ModelPackageError, match="already exists"):
        save_package(build_colour_model(), card, tiny_package)


def test_save_refuses_a_card_for_other_weights(tmp_path: Path) -> None:
    card = ModelCard(name="x", version="1", classes=("a", "b"), input_size=(32, 32))
    with pytest.raises(ModelPackageError, match="3 outputs"):
        save_package(build_colour_model(), card, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_prepare_batch_follows_the_card() -> None:
    base = ModelCard(name="x", version="1", classes=("a", "b"), input_size=(8, 8))
    img = np.zeros((1, 8, 8, 3), np.uint8)
    img[..., 0] = 255
    unit = prepare_batch(img, base)
    assert unit.dtype == np.float32 and unit[0, 0, 0, 0] == pytest.approx(1.0)
    bgr = prepare_batch(img, ModelCard.from_dict({**base.to_dict(), "colour_order": "BGR"}))
    assert bgr[0, 0, 0, 2] == pytest.approx(1.0) and bgr[0, 0, 0, 0] == 0.0
    with pytest.raises(ValueError, match="model takes"):
        prepare_batch(np.zeros((1, 16, 16, 3), np.uint8), base)
