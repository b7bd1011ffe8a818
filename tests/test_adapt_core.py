"""Adaptation building blocks: replay sets, batch-norm recalibration, the labelled-cell
store and its held-back split, the model library and derived cards."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from micro_app.adapt import library
from micro_app.adapt.labelled import LabelledStore, read_labels, split_for
from micro_app.core.errors import InputError, ModelPackageError
from micro_app.core.models.card import ModelCard
from micro_app.core.models.replay import REPLAY_FILE, ReplaySet, load_replay, replay_entry, sample

CLASSES = ("red_cell", "green_cell", "blue_cell")


def _images(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """Smooth colour blobs, like a stained cell (not pixel noise, which no JPEG keeps)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(30, 225, (n, 1, 1, 3)).astype(np.float32)
    noise = rng.normal(0, 40, (n, size, size, 3)).astype(np.float32)
    smooth = np.stack([cv2.GaussianBlur(x, (0, 0), 3) for x in noise])
    return np.clip(base + smooth, 0, 255).astype(np.uint8)


def test_replay_set_round_trip_and_sampling(tmp_path: Path) -> None:
    images = _images(30)
    labels = np.arange(30) % 3
    s = sample(images, labels, CLASSES, per_class=4, seed=1)
    assert s.counts() == {c: 4 for c in CLASSES}
    path = s.save(tmp_path / REPLAY_FILE)
    back = ReplaySet.load(path)
    assert back.classes == CLASSES and np.array_equal(back.labels, s.labels)
    assert np.abs(back.images.astype(int) - s.images).mean() < 4  # JPEG, quality 95
    assert sample(images, labels, CLASSES, 4, seed=1).counts() == s.counts()


def test_replay_file_never_unpickles_and_is_checked_against_the_card(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, jpeg=np.array([object()], dtype=object), offsets=np.zeros(2, int))
    with pytest.raises(ModelPackageError, match="not a replay set"):
        ReplaySet.load(bad)
    s = sample(_images(9), np.arange(9) % 3, CLASSES, 3, 0)
    path = s.save(tmp_path / REPLAY_FILE)
    card = ModelCard(
        name="m",
        version="1",
        classes=CLASSES,
        input_size=(32, 32),
        extra={"replay": replay_entry(s, path, "test")},
    )
    assert load_replay(tmp_path, card) is not None
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ModelPackageError, match="sha256"):
        load_replay(tmp_path, card)


def _bn_model():  # type: ignore[no-untyped-def]
    from micro_app.training.architectures import architecture

    return architecture("live_cnn").build(3, 32, None, width=0.25)


def test_batchnorm_statistics_become_those_of_the_new_cells() -> None:
    import keras

    from micro_app.adapt.batchnorm import batchnorm_layers, recalibrate_batchnorm

    model = _bn_model()
    x = (_images(100).astype(np.float32) / 255.0) * 0.6 + 0.3  # a brighter, flatter "lamp"
    others = {w.path: np.array(w) for w in model.weights if "moving" not in w.path}
    layers = recalibrate_batchnorm(model, x, batch=32)
    assert len(layers) == len(batchnorm_layers(model)) == 6
    assert all(k in layers[0] for k in ("mean_shift_sd", "variance_ratio"))
    # the first layer's statistics are exactly those of its input over all the cells
    stem = batchnorm_layers(model)[0]
    act = np.asarray(keras.Model(model.input, stem.input)(x, training=False))
    act = act.reshape(-1, act.shape[-1])
    assert np.allclose(np.array(stem.moving_mean), act.mean(0), atol=1e-4)
    assert np.allclose(np.array(stem.moving_variance), act.var(0), rtol=0.05, atol=1e-5)
    # nothing but the moving statistics changed, and the layers are as they were
    for w in model.weights:
        if "moving" not in w.path:
            assert np.array_equal(np.array(w), others[w.path])
    assert all(b.trainable and b.momentum == 0.9 for b in batchnorm_layers(model))


def test_labelled_store_holds_back_a_fixed_quarter_and_keeps_it(tmp_path: Path) -> None:
    store = LabelledStore(tmp_path / "cells")
    crops = _images(12)
    added = [
        store.add(c, CLASSES[i % 2], source="correction", predicted="blue_cell", key=f"s#{i}")
        for i, c in enumerate(crops)
    ]
    assert [split_for(k) for k in range(7)] == ["train", "train", "holdout"] + ["train"] * 3 + [
        "holdout"
    ]
    by_class = {c: [a.split for a in added if a.label == c] for c in CLASSES[:2]}
    assert by_class["red_cell"] == ["train", "train", "holdout", "train", "train", "train"]
    # the same cell seen again is relabelled, not stored twice; its split never changes
    again = store.add(crops[4], "blue_cell", source="teach", key="s#4")
    assert again.cell_id == added[4].cell_id and again.split == "holdout"
    assert len(store) == 12 and (store.root / again.file).is_file()
    assert not (store.root / added[4].file).exists()
    # reopened from disk: the same cells, labels and splits
    reopened = LabelledStore(tmp_path / "cells")
    assert {(c.cell_id, c.label, c.split) for c in reopened.cells()} == {
        (c.cell_id, c.label, c.split) for c in store.cells()
    }
    got = reopened.to_set(CLASSES, (32, 32))
    assert len(got.train_labels) + len(got.holdout_labels) == 12
    assert got.counts("holdout") == {"green_cell": 1, "blue_cell": 1}  # red's moved to blue
    reopened.remove(again.cell_id)
    assert len(LabelledStore(tmp_path / "cells")) == 11
    # labels the model has no class for are skipped and counted
    only_two = reopened.to_set(CLASSES[:2], (32, 32))
    assert only_two.skipped == {}
    assert set(LabelledStore(tmp_path / "cells").to_set(("red_cell", "x"), (32, 32)).skipped) == {
        "green_cell"
    }


def test_a_broken_store_index_is_reported_and_left_alone(tmp_path: Path) -> None:
    root = tmp_path / "cells"
    root.mkdir()
    (root / "cells.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="not a labelled-cell index"):
        LabelledStore(root)
    assert (root / "cells.json").read_text(encoding="utf-8") == "{not json"


def test_plain_class_folders_read_with_the_same_split(tmp_path: Path) -> None:
    for k, img in enumerate(_images(8, 40)):
        folder = tmp_path / ("red_cell" if k < 5 else "odd_class")
        folder.mkdir(exist_ok=True)
        cv2.imwrite(str(folder / f"{k}.png"), img)
    got = read_labels(tmp_path, CLASSES, (32, 32))
    assert got.train_images.shape[1:] == (32, 32, 3)
    assert got.counts("train") == {"red_cell": 4} and got.counts("holdout") == {"red_cell": 1}
    assert got.skipped == {"odd_class": 3}
    with pytest.raises(InputError, match="no labelled cells"):
        read_labels(tmp_path / "red_cell", CLASSES, (32, 32))


def test_library_versions_and_derived_cards(tmp_path: Path, tiny_package: Path) -> None:
    parent = ModelCard.read(tiny_package)
    parent = replace(parent, extra={**parent.extra, "int8": {"agreement": 1.0}})
    v1, f1 = library.next_version(parent, tmp_path)
    assert v1 == "0.0.1-adapt1" and f1.parent == tmp_path
    child = library.derived_card(tiny_package, parent, "calibration", {"cells": 40}, version=v1)
    assert child.parent and parent.name in child.parent and str(tiny_package) in child.parent
    assert child.weights == {} and child.extra["adaptation"]["kind"] == "calibration"
    assert "int8" not in child.extra  # the parent's 8-bit check is not the child's
    assert child.extra["lineage"] == [child.parent]
    f1.mkdir()
    (f1 / "card.json").write_text(json.dumps(child.to_dict()), encoding="utf-8")
    v2, f2 = library.next_version(child, tmp_path)
    assert v2 == "0.0.1-adapt2" and f2 != f1
    grandchild = library.derived_card(f1, child, "teach", {"train_cells": 9}, version=v2)
    assert len(grandchild.extra["lineage"]) == 2
    versions = library.list_versions(tmp_path)
    assert [v.card.version for v in versions] == [v1]
    assert "calibrated on 40 cells (no labels; accuracy unmeasured)" in versions[0].describe()
    with pytest.raises(ValueError, match="kind"):
        library.derived_card(tiny_package, parent, "magic", {}, version="x")
