"""The engine: frame -> cells -> one batched model call; on its own thread, newest frame wins."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_CLASSES, build_colour_model

from micro_app.core.capture import CaptureThread
from micro_app.core.engine import Engine, EngineParams
from micro_app.core.frame import Frame
from micro_app.core.inference import InferenceThread
from micro_app.core.mailbox import Mailbox
from micro_app.core.models import ModelCard, load_package, save_package
from micro_app.core.models.card import CropSpec
from micro_app.core.results import UNCLASSIFIED, UNIDENTIFIED
from micro_app.core.sources import DemoSource

pytestmark = pytest.mark.slow


def demo_frame(seed: int = 0, min_cells: int = 1) -> np.ndarray:
    """The first demo frame of ``seed`` with at least ``min_cells`` white cells in view."""
    src = DemoSource(seed=seed)
    src.open()
    try:
        for _ in range(500):
            frame = src.read()
            assert frame is not None
            if len(src.last_truth) >= min_cells:
                return frame.image
        raise AssertionError(f"no demo frame with {min_cells} white cells")
    finally:
        src.close()


def test_cells_are_classified_in_one_batch(tiny_package: Path) -> None:
    engine = Engine(load_package(tiny_package))
    calls: list[int] = []
    predict = engine.classifier.predict_full  # type: ignore[union-attr]

    def counting(images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        calls.append(len(images))
        return predict(images)

    engine.classifier.predict_full = counting  # type: ignore[union-attr, method-assign]
    result = engine.process(demo_frame(min_cells=2), seq=5)
    assert result.frame_seq == 5
    assert len(result.cells) >= 2
    assert calls == [len(result.cells)]  # every crop of the frame in one call
    assert result.device.startswith(("CPU", "GPU"))
    assert result.model is not None and result.model["name"] == "tiny-colour"
    for cell in result.cells:
        assert set(cell.probabilities) == set(TINY_CLASSES)
        assert sum(cell.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
        assert cell.confidence == pytest.approx(max(cell.probabilities.values()))
        assert cell.label == cell.predicted  # default threshold 0.5; the colour model is sure


def test_low_confidence_is_unidentified(tiny_package: Path) -> None:
    image = demo_frame()
    sure = Engine(load_package(tiny_package), params=EngineParams(threshold=0.0)).process(image)
    strict = Engine(load_package(tiny_package), params=EngineParams(threshold=1.0)).process(image)
    assert [c.label for c in strict.cells] == [UNIDENTIFIED] * len(sure.cells)
    assert [c.predicted for c in strict.cells] == [c.label for c in sure.cells]


def test_without_a_model_cells_are_located_not_classified() -> None:
    result = Engine(None).process(demo_frame())
    assert result.cells and {c.label for c in result.cells} == {UNCLASSIFIED}
    assert result.model is None and result.device == "none"


def test_field_model_classifies_the_whole_frame(tmp_path: Path) -> None:
    card = ModelCard(
        name="field", version="1", classes=TINY_CLASSES, input_size=(32, 32), scope="field"
    )
    folder = save_package(build_colour_model(), card, tmp_path / "field")
    image = np.zeros((120, 160, 3), np.uint8)
    image[..., 2] = 220  # a blue field
    result = Engine(load_package(folder)).process(image)
    assert result.field_result is not None
    assert result.field_result.label == "blue_cell"


def test_crop_size_from_the_card_is_in_micrometres(tiny_package: Path) -> None:
    from micro_app.core.locate import locate_cells

    pkg = load_package(tiny_package)
    pkg.card = replace(pkg.card, crop=CropSpec(size_um=10.0))
    engine = Engine(pkg, params=EngineParams(um_per_px=0.25))
    image = demo_frame()
    loc = locate_cells(image, engine.preprocess, engine.locate, 0.25)
    framed = engine._crop_cells(loc.cells, 0.25)
    assert framed and all(c.box.width == c.box.height == 40 for c in framed)  # 10 µm / 0.25
    for before, after in zip(loc.cells, framed, strict=True):
        assert after.box.center == pytest.approx(before.center, abs=1.0)


def test_inference_thread_takes_the_newest_frame_and_stops(tiny_package: Path) -> None:
    engine = Engine(load_package(tiny_package))
    engine.classifier.warm_up()  # type: ignore[union-attr]
    frames: Mailbox[Frame] = Mailbox()
    errors: list[Exception] = []
    capture = CaptureThread(DemoSource(seed=1), frames, on_error=errors.append)
    seen: list[tuple[int, int]] = []
    worker = InferenceThread(
        lambda: engine,
        frames,
        on_result=lambda f, r: seen.append((f.seq, r.frame_seq)),
        on_error=errors.append,
    )
    before = set(threading.enumerate())
    capture.start()
    worker.start()
    deadline = time.monotonic() + 20
    while len(seen) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    capture.stop()
    worker.request_stop()
    worker.join(5)
    assert not errors
    assert len(seen) >= 5
    assert all(f == r for f, r in seen)  # each result belongs to the frame it came with
    frame_seqs = [f for f, _ in seen]
    assert frame_seqs == sorted(set(frame_seqs))  # strictly newer each time, never a backlog
    assert frames.dropped > 0 and worker.skipped > 0  # the demo outruns the model: frames skipped
    assert not capture.is_alive() and not worker.is_alive()
    assert set(threading.enumerate()) <= before


def test_live_scale_is_smoothed_over_frames() -> None:
    src = DemoSource(seed=4)
    src.open()
    frames = [src.read() for _ in range(12)]
    src.close()
    single = Engine(None)
    smooth = Engine(None, smooth_scale=True)
    raw = [single.process(f.image).um_per_px for f in frames if f is not None]
    smoothed = [smooth.process(f.image).um_per_px for f in frames if f is not None]
    assert np.std(smoothed[4:]) < np.std(raw[4:])
    truth = 1.0 / src.px_per_um
    assert abs(np.median(smoothed) - truth) / truth < 0.15


OPEN_SET_KERNEL = (np.eye(3) - 1 / 3).astype(np.float32) * 20  # logits: colour contrasts


def _open_set_package(folder: Path, strict: bool = True) -> tuple[Path, float]:
    """The colour model with a ``predictions`` layer over its 3 features (mean R, G, B)
    that answers to pure red, green and blue, and its open-set check: the threshold from
    known cells near those colours (strict), or one that flags nothing (lax)."""
    import keras

    from micro_app.core.openset import OPENSET_FILE, OpenSetStats, card_entry

    inp = keras.Input((32, 32, 3))
    feats = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inp))
    out = keras.layers.Dense(3, activation="softmax", name="predictions")(feats)
    model = keras.Model(inp, out)
    model.get_layer("predictions").set_weights([OPEN_SET_KERNEL, np.zeros(3)])
    card = ModelCard(
        name="open",
        version="1",
        classes=TINY_CLASSES,
        input_size=(32, 32),
        preprocessing=replace(
            ModelCard("x", "1", ("a", "b"), (8, 8)).preprocessing, normalisation="none"
        ),
    )
    save_package(model, card, folder)
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 50)
    known = np.eye(3)[labels] * 0.9 + rng.normal(0, 0.02, (150, 3))
    stats = OpenSetStats.from_head(OPEN_SET_KERNEL, np.zeros(3))
    stats = stats.with_threshold(known, 95.0) if strict else stats
    path = stats.save(folder / OPENSET_FILE)
    import json

    doc = json.loads((folder / "card.json").read_text())
    doc["extra"]["open_set"] = card_entry(stats, path)
    (folder / "card.json").write_text(json.dumps(doc))
    return folder, stats.threshold


def test_cells_unlike_every_class_are_flagged_atypical(tmp_path: Path) -> None:
    """A smear's purple-pink cells are far from pure red, green and blue features."""
    from micro_app.core.overlay import cell_text
    from micro_app.core.results import ATYPICAL

    image = demo_frame(seed=1, min_cells=3)  # two whole cells in view
    folder, threshold = _open_set_package(tmp_path / "strict")
    result = Engine(load_package(folder)).process(image)
    whole = [c for c in result.cells if not c.touches_border]  # cut cells: the next test
    assert whole and all(c.atypical and c.label == ATYPICAL for c in whole)
    assert all(c.open_set_score is not None and c.open_set_score > threshold for c in whole)
    cell = whole[0]
    assert cell.predicted in TINY_CLASSES  # the class it would have had stays on record
    assert cell_text(cell.label, cell.confidence, provisional=False) == "atypical — review"
    assert result.to_dict()["cells"][0]["atypical"] is True
    lax = Engine(load_package(_open_set_package(tmp_path / "lax", strict=False)[0]))
    assert not any(c.atypical for c in lax.process(image).cells)


def test_a_cell_cut_by_the_frame_edge_is_never_atypical(tmp_path: Path) -> None:
    """Half a cell fits no class because half of it is missing, not because it is odd."""
    folder, _ = _open_set_package(tmp_path / "strict")
    engine = Engine(load_package(folder))
    image = demo_frame(seed=1, min_cells=3)
    whole = engine.process(image).cells
    assert whole and all(c.atypical for c in whole if not c.touches_border)
    cx = whole[0].nucleus_box.x0 + 6  # the frame's edge runs through the nucleus
    cut = engine.process(np.ascontiguousarray(image[:, cx:])).cells
    edge = [c for c in cut if c.touches_border]
    assert edge and not any(c.atypical for c in edge)
    assert all(c.open_set_score is not None for c in edge)  # the score stays on record


def test_cells_unlike_the_training_images_are_provisional_not_atypical(tmp_path: Path) -> None:
    """On a microscope unlike the training images every cell is far from every class (the
    camera, not the cell): the cells are provisional and the open-set check stays silent,
    while the distance stays on record for review."""
    import json

    from micro_app.core import appearance

    folder, threshold = _open_set_package(tmp_path / "strict")
    greens = np.zeros((20, 32, 32, 3), np.uint8)
    greens[..., 1] = 200 + np.arange(20, dtype=np.uint8)[:, None, None]
    stats = appearance.AppearanceStats.fit(appearance.features_batch(greens))
    doc = json.loads((folder / "card.json").read_text())
    doc["appearance"] = stats.to_dict()
    (folder / "card.json").write_text(json.dumps(doc))
    result = Engine(load_package(folder)).process(demo_frame(min_cells=2))
    assert result.cells and all(c.provisional and not c.atypical for c in result.cells)
    assert all(c.label in TINY_CLASSES or c.label == "unidentified" for c in result.cells)
    assert all(c.open_set_score is not None and c.open_set_score > threshold for c in result.cells)
