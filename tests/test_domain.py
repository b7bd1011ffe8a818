"""Another lab's images: stain normalisation, the unlike-the-training-data check,
temperature scaling and the unidentified threshold chosen on validation."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from micro_app.core.appearance import AppearanceStats, features, features_batch
from micro_app.core.errors import ModelPackageError
from micro_app.core.imageio import list_images, read_image_rgb
from micro_app.core.stain import StainReference, lab_stats, normalise_stain, reinhard
from micro_app.training.calibrate import choose_threshold, fit_temperature


def _pbc_crops(pbc_dir: Path, per_class: int, size: int = 64, offset: int = 0) -> np.ndarray:
    out = []
    for folder in sorted(p for p in pbc_dir.iterdir() if p.is_dir()):
        for path in list_images(folder)[offset : offset + per_class]:
            out.append(cv2.resize(read_image_rgb(path), (size, size), interpolation=cv2.INTER_AREA))
    return np.stack(out)


def _recolour(images: np.ndarray, gains: tuple[float, float, float]) -> np.ndarray:
    """Another lamp / white balance: a gain per RGB channel."""
    x = images.astype(np.float32) * np.asarray(gains, np.float32)
    return np.clip(x, 0, 255).astype(np.uint8)


def test_reinhard_gives_the_reference_colour_statistics() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(40, 220, (48, 48, 3), dtype=np.uint8)
    ref = StainReference((70.0, 12.0, -5.0), (12.0, 6.0, 8.0))
    mean, std = lab_stats(reinhard(img, ref))
    assert np.allclose(mean, ref.mean, atol=1.5)
    assert np.allclose(std, ref.std, rtol=0.15)


def test_reinhard_undoes_a_colour_cast(pbc_dir: Path) -> None:
    crops = _pbc_crops(pbc_dir, 3)
    ref = StainReference.from_images(crops)
    cast = _recolour(crops, (1.0, 0.85, 0.6))  # yellowish lamp
    before = np.abs(cast.astype(int) - crops).mean()
    after = np.abs(normalise_stain(cast, "reinhard", ref).astype(int) - crops).mean()
    assert after < before / 2


def test_stain_none_leaves_images_alone_and_reinhard_needs_a_reference() -> None:
    imgs = np.full((2, 8, 8, 3), 100, np.uint8)
    assert normalise_stain(imgs, "none", None) is imgs
    with pytest.raises(ValueError, match="reference"):
        normalise_stain(imgs, "reinhard", None)
    with pytest.raises(ValueError, match="unknown stain"):
        normalise_stain(imgs, "macenko", None)


def test_appearance_flags_other_stains_but_not_held_out_cells(pbc_dir: Path) -> None:
    train = _pbc_crops(pbc_dir, 12)
    held_out = _pbc_crops(pbc_dir, 6, offset=40)
    stats = AppearanceStats.fit(features_batch(train))
    same = stats.scores(features_batch(held_out))
    assert np.mean(same > stats.threshold) <= 0.2
    for gains in [(1.0, 0.85, 0.6), (0.8, 0.8, 1.0)]:
        other = stats.scores(features_batch(_recolour(held_out, gains)))
        assert np.mean(other > stats.threshold) >= 0.8
    blurred_small = np.stack([cv2.resize(c, (20, 20)) for c in held_out])
    scaled = np.stack([cv2.resize(c, (64, 64)) for c in blurred_small])
    assert np.median(stats.scores(features_batch(scaled))) > np.median(same)
    back = AppearanceStats.from_dict(stats.to_dict())
    assert np.allclose(back.scores(features_batch(held_out)), same, atol=1e-3)


def test_appearance_features_are_finite_on_a_flat_image() -> None:
    f = features(np.full((16, 16, 3), 200, np.uint8))
    assert np.all(np.isfinite(f)) and f[-1] == 0.0


def test_temperature_fit_recovers_overconfidence() -> None:
    rng = np.random.default_rng(1)
    n, k = 2000, 4
    logits = rng.normal(0, 1.5, (n, k))
    labels = np.array([rng.choice(k, p=np.exp(r) / np.exp(r).sum()) for r in logits])
    over = np.exp(logits * 3.0)  # a net three times too confident
    probs = over / over.sum(axis=1, keepdims=True)
    t = fit_temperature(probs, labels)
    assert 2.4 < t < 3.7
    from micro_app.core.models.classifier import apply_temperature

    assert np.array_equal(apply_temperature(probs, t).argmax(1), probs.argmax(1))


def test_threshold_reaches_the_target_on_validation() -> None:
    rng = np.random.default_rng(2)
    n = 1000
    conf = rng.uniform(0.3, 1.0, n)
    right = rng.uniform(0, 1, n) < conf  # confident cells are more often right
    labels = np.where(right, 0, 1)
    probs = np.stack([conf, 1 - conf], axis=1)
    choice = choose_threshold(probs, labels, target_accuracy=0.9, max_withheld=0.9)
    kept = conf >= choice["threshold"]
    assert choice["rule"] == "target"
    assert right[kept].mean() >= 0.9
    assert not (right[conf >= choice["threshold"] - 0.05].mean() >= 0.9)
    capped = choose_threshold(probs, labels, target_accuracy=0.999, max_withheld=0.1)
    assert capped["rule"] == "max_withheld" and capped["validation_withheld"] <= 0.1


def _package_with(tiny_package: Path, tmp_path: Path, **changes: object) -> Path:
    import shutil

    from micro_app.core.atomic import atomic_write_json
    from micro_app.core.models.card import CARD_FILE, ModelCard

    folder = tmp_path / "pkg"
    shutil.copytree(tiny_package, folder)
    card = replace(ModelCard.read(folder), **changes)  # type: ignore[arg-type]
    atomic_write_json(folder / CARD_FILE, card.to_dict())
    return folder


def test_card_rejects_a_stain_mode_without_reference(tiny_package: Path, tmp_path: Path) -> None:
    from micro_app.core.models.card import ModelCard

    card = ModelCard.read(tiny_package)
    with pytest.raises(ModelPackageError, match="stain_reference"):
        replace(card, preprocessing=replace(card.preprocessing, stain="reinhard"))
    with pytest.raises(ModelPackageError, match="temperature"):
        replace(card, temperature=0.0)
    with pytest.raises(ModelPackageError, match="appearance"):
        replace(card, appearance={"features": ["x"], "center": [], "scale": []})


def test_engine_marks_frames_unlike_the_training_images(tiny_package: Path, tmp_path: Path) -> None:
    from micro_app.core.engine import Engine
    from micro_app.core.models import load_package
    from micro_app.core.sources import DemoSource

    src = DemoSource(seed=3)
    src.open()
    frames = []
    for _ in range(12):
        read = src.read()
        assert read is not None
        frames.append(read.image)
    src.close()
    engine0 = Engine(load_package(tiny_package))
    crops = np.concatenate([engine0.crops(f) for f in frames[:10]])
    assert len(crops) >= 8
    frame = frames[11]
    stats = AppearanceStats.fit(features_batch(crops))
    pkg = _package_with(tiny_package, tmp_path, appearance=stats.to_dict())
    engine = Engine(load_package(pkg))
    like = engine.process(frame)
    assert like.unlike_share is not None and not like.unlike_training
    assert like.input_warning is None
    other_lamp = _recolour(frame[None], (0.8, 0.8, 1.0))[0]
    unlike = engine.process(other_lamp)
    assert len(unlike.cells) >= 1
    assert unlike.unlike_training and unlike.unlike_share is not None
    assert unlike.input_warning and "unlike the model's training images" in unlike.input_warning
    d = unlike.to_dict()
    assert d["input_check"]["unlike_training"] is True
    assert all(c["unlike_training"] for c in d["cells"]) or d["input_check"]["warning"]
    assert Engine(load_package(tiny_package)).process(frame).unlike_share is None
    # exported annotated images carry the warning along the bottom edge
    from micro_app.core.overlay import OverlayOptions, draw_overlay

    warned = draw_overlay(other_lamp, unlike)
    plain = draw_overlay(other_lamp, unlike, OverlayOptions(input_warning=False))
    assert not np.array_equal(warned[-30:], plain[-30:])
    quiet = OverlayOptions(input_warning=False)
    assert np.array_equal(draw_overlay(frame, like), draw_overlay(frame, like, quiet))


def test_live_warning_is_calm_it_needs_several_unlike_frames_and_clears() -> None:
    from micro_app.core.appearance import UnlikeMonitor

    m = UnlikeMonitor()
    assert m.update(None) is None
    assert m.update(0.0) is None
    assert m.update(1.0) is None  # one odd frame is not enough
    msgs = [m.update(1.0) for _ in range(20)]
    assert msgs[-1] and "unlike the model's training images" in msgs[-1]
    assert all(m.update(0.4) for _ in range(3))  # hysteresis: stays on near the edge
    cleared = [m.update(0.0) for _ in range(30)]
    assert cleared[-1] is None


def test_slide_counts_cells_unlike_training_and_warns(tiny_package: Path) -> None:
    from micro_app.core.geometry import Box
    from micro_app.core.results import CellResult, FrameResult
    from micro_app.core.slide import SlideSession
    from micro_app.core.slide_export import cells_csv

    session = SlideSession(target=10)
    for seq in range(6):
        cells = tuple(
            CellResult(
                box=Box(100 * k + seq, 50, 100 * k + seq + 40, 90),
                nucleus_box=Box(100 * k + seq + 10, 60, 100 * k + seq + 30, 80),
                label="neutrophil",
                confidence=0.9,
                probabilities={"neutrophil": 0.9, "lymphocyte": 0.1},
                appearance_score=9.0,
                unlike_training=True,
            )
            for k in range(3)
        )
        model = {"name": "m", "version": "1", "classes": ["neutrophil", "lymphocyte"]}
        session.add_result(
            FrameResult(seq, float(seq), (200, 400), cells, 0.1, "estimated", 1.0, model=model)
        )
    st = session.status()
    assert st.total == 3
    # said once, by the provisional line (its figure is the count's), not again as a warning
    line = st.provisional_line()
    assert line is not None and "3 of 3 cells are provisional" in line
    assert "unlike the model's training images" in line
    assert not any("unlike" in w for w in st.warnings)
    assert st.shown_share("neutrophil") is None  # provisional cells only: no percentage
    assert "unlike_training" in cells_csv(session).splitlines()[0]
