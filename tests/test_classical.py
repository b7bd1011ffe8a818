"""Classical heads: numpy predictions equal scikit-learn's, storage cannot run code, and a
package with a head loads and classifies like any other."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from micro_app.core.errors import ModelPackageError
from micro_app.core.models.classical import load_head
from micro_app.training.classical import HEADS, cross_validate, fit_head


def _data(n_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), 30)
    x = rng.normal(size=(len(y), 6)) + y[:, None] * 0.8
    return x, y, rng.normal(size=(25, 6)) * 1.5


@pytest.mark.parametrize("n_classes", [2, 4])
@pytest.mark.parametrize("name", HEADS)
def test_head_matches_scikit_learn_after_a_save_and_load(
    name: str, n_classes: int, tmp_path: Path
) -> None:
    x, y, x_new = _data(n_classes)
    classes = tuple("abcd"[:n_classes])
    head, (scaler, est) = fit_head(name, x, y, classes)
    assert head.name == name
    loaded = load_head(head.save(tmp_path / "head.npz"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = est.predict_proba(scaler.transform(x_new))
    got = loaded.predict_proba(x_new)
    assert got.shape == (25, n_classes) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert loaded.classes == classes


def test_a_head_file_with_pickled_objects_is_refused(tmp_path: Path) -> None:
    x, y, _ = _data(3)
    head, _ = fit_head("lda", x, y, ("a", "b", "c"))
    data = dict(np.load(io.BytesIO(head.to_bytes()), allow_pickle=False))
    data["a_coef"] = np.array([{"evil": 1}], dtype=object)  # would need pickle to load
    path = tmp_path / "head.npz"
    np.savez(path, **data)
    with pytest.raises(ModelPackageError, match="cannot read"):
        load_head(path)
    meta = json.loads(bytes(np.load(io.BytesIO(head.to_bytes()))["meta"]))
    assert meta["kind"] == "lda" and meta["format"] == "micro_app.classical_head"


def test_ten_fold_cross_validation_scores_every_head() -> None:
    x, y, _ = _data(3)
    cv = cross_validate(x, y, list(HEADS), folds=10)
    assert set(cv) == set(HEADS)
    for r in cv.values():
        assert r["folds"] == 10 and len(r["fold_accuracy"]) == 10
        assert 0.5 < r["accuracy_mean"] <= 1.0


@pytest.mark.slow
def test_package_with_a_head_loads_and_classifies(tmp_path: Path) -> None:
    import keras

    from micro_app.core.models import ModelCard, load_package, save_package
    from micro_app.core.models.classifier import Classifier, prepare_batch

    inp = keras.Input((16, 16, 3))
    feats = keras.layers.GlobalAveragePooling2D()(inp)  # 3 colour means as features
    extractor = keras.Model(inp, feats)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (90, 16, 16, 3), dtype=np.uint8)
    y = np.argmax(images.reshape(90, -1, 3).mean(1), axis=1)  # dominant channel
    card = ModelCard(
        name="colour-svm", version="1", classes=("red", "green", "blue"), input_size=(16, 16)
    )
    f = np.asarray(extractor(prepare_batch(images, card)))
    head, _ = fit_head("svm_linear", f, y, card.classes)
    folder = save_package(extractor, card, tmp_path / "pkg", head=head)
    pkg = load_package(folder)
    assert pkg.head is not None and pkg.n_outputs == 3
    probs = Classifier(pkg).predict(images[:10])
    np.testing.assert_allclose(probs, head.predict_proba(f[:10]), atol=1e-6)
    # a head that does not fit the features is refused on load
    other, _ = fit_head("lda", np.hstack([f, f]), y, card.classes)
    other.save(folder / "head.npz")
    card_json = json.loads((folder / "card.json").read_text())
    from micro_app.core.models.package import sha256_file

    card_json["weights"]["classical"]["sha256"] = sha256_file(folder / "head.npz")
    (folder / "card.json").write_text(json.dumps(card_json))
    with pytest.raises(ModelPackageError, match="head takes 6"):
        load_package(folder)
