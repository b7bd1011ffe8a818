"""Teaching a class the model lacks, end to end on a small colour network: the grown
output learns the new class, the collected (unlabelled) cells are pseudo-labelled by the
model as it was (a new, untrained output once claimed 99 % of them), and the written
package is consistent: card, Keras, ONNX, replay sample and open-set check all know the
new class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from micro_app.adapt.labelled import LabelledSet
from micro_app.adapt.teach import TeachConfig, teach
from micro_app.core.models import ModelCard, load_package, save_package
from micro_app.core.models.classifier import Classifier
from micro_app.core.models.replay import REPLAY_FILE, ReplaySet, load_replay, replay_entry
from micro_app.core.openset import OpenSetStats

pytestmark = pytest.mark.slow
KNOWN = ("red_cell", "green_cell", "blue_cell")
COLOURS = {
    "red_cell": (220, 40, 40),
    "green_cell": (40, 220, 40),
    "blue_cell": (40, 40, 220),
    "yellow_cell": (220, 220, 40),
}


def cells(name: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.array(COLOURS[name], np.float32)
    x = base + rng.normal(0, 12, (n, 1, 1, 3)) + rng.normal(0, 6, (n, 16, 16, 3))
    return np.clip(x, 0, 255).astype(np.uint8)


@pytest.fixture
def colour_package(tmp_path: Path) -> Path:
    import keras

    inp = keras.Input((16, 16, 3))
    feats = keras.layers.GlobalAveragePooling2D(name="features")(inp)
    out = keras.layers.Dense(3, activation="softmax", name="predictions")(feats)
    model = keras.Model(inp, out)
    model.get_layer("predictions").set_weights([np.eye(3, dtype=np.float32) * 12, np.zeros(3)])
    replay = ReplaySet(
        np.concatenate([cells(c, 16, k) for k, c in enumerate(KNOWN)]),
        np.repeat(np.arange(3), 16),
        KNOWN,
    )
    work = tmp_path / "work"
    work.mkdir()
    path = replay.save(work / REPLAY_FILE)
    card = ModelCard(
        name="colours",
        version="1.0.0",
        classes=KNOWN,
        input_size=(16, 16),
        unidentified_threshold=0.5,
        extra={"replay": replay_entry(replay, path, "synthetic colours")},
    )
    return save_package(model, card, tmp_path / "colours", files={REPLAY_FILE: path})


def test_a_taught_class_is_learned_and_never_claims_the_collected_cells(
    colour_package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import micro_app.adapt.teach_fit as teaching

    outputs: list[int] = []
    original = teaching.pseudo_label

    def spy(model, *args, **kw):  # type: ignore[no-untyped-def]
        outputs.append(int(model.output_shape[-1]))
        return original(model, *args, **kw)

    monkeypatch.setattr(teaching, "pseudo_label", spy)
    parent = load_package(colour_package)
    classes = (*KNOWN, "yellow_cell")
    train = np.concatenate([cells(c, 8, 10 + k) for k, c in enumerate(classes)])
    labels = np.repeat(np.arange(4), 8)
    held = np.concatenate([cells(c, 3, 20 + k) for k, c in enumerate(classes)])
    held_labels = np.repeat(np.arange(4), 3)
    labelled = LabelledSet(train, labels, held, held_labels, classes, {})
    pool = np.concatenate([cells(c, 40, 30 + k) for k, c in enumerate(KNOWN)])
    cfg = TeachConfig(epochs=12, warmup_epochs=8, head_learning_rate=0.2, learning_rate=0.05)
    result = teach(parent, labelled, tmp_path / "taught", config=cfg, pool=pool)
    r = result.report
    assert r["added_classes"] == ["yellow_cell"]
    # the collected cells were pseudo-labelled by the model without the new output: every
    # one as the colour it is, none as yellow
    assert outputs == [3]
    p = r["pseudo_labels"]
    assert p["kept"] >= 100 and "yellow_cell" not in p["per_class"]
    child = load_package(result.package)
    assert child.card.classes == classes
    probs = Classifier(child).predict(cells("yellow_cell", 30, 99))
    assert np.mean(probs.argmax(1) == 3) >= 0.9  # the new class is found
    others = Classifier(child).predict(np.concatenate([cells(c, 30, 50) for c in KNOWN]))
    assert np.mean(others.argmax(1) == 3) <= 0.05  # and claims almost none of the others
    assert np.mean(others.argmax(1) == np.repeat(np.arange(3), 30)) >= 0.95
    # one package, one set of classes: ONNX, the replay sample, the open-set check
    onnx = Classifier(load_package(result.package, keras=False), backend="onnx")
    assert onnx.predict(cells("yellow_cell", 4, 7)).shape == (4, 4)
    replay = load_replay(result.package, child.card)
    assert replay is not None and replay.classes == classes
    assert replay.counts()["yellow_cell"] == 8  # its training cells, never the held-back
    assert OpenSetStats.load(result.package / "openset.npz").kernel.shape == (3, 4)
