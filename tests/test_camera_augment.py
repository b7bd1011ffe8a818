"""The simulated stain and camera used in training (``--camera-augment``)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from micro_app.core.errors import SettingsError
from micro_app.training import camera_augment as ca
from micro_app.training.augment import Augment


def _smear(side: int = 128, seed: int = 0) -> np.ndarray:
    """A pale pink background, a purple nucleus and fine detail (RGB uint8)."""
    rng = np.random.default_rng(seed)
    img = np.full((side, side, 3), (225, 200, 205), np.uint8)
    cv2.circle(img, (side // 2, side // 2), side // 5, (110, 60, 150), -1)
    for _ in range(40):
        x, y = rng.integers(0, side, 2)
        cv2.circle(img, (int(x), int(y)), 2, (180, 120, 140), -1)
    return img


def _rng(seed: int = 1) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_hed_jitter_without_change_is_the_identity_and_with_change_moves_the_stain() -> None:
    img = _smear()
    same = ca.hed_jitter(img, _rng(), 0.0, 0.0)
    assert np.abs(same.astype(int) - img).max() <= 1
    moved = ca.hed_jitter(img, _rng(), 0.3, 0.1)
    assert moved.shape == img.shape and moved.dtype == np.uint8
    assert np.abs(moved.astype(int) - img).mean() > 3


def test_lab_jitter_moves_the_colour_statistics_but_keeps_the_structure() -> None:
    img = _smear()
    out = ca.lab_jitter(img, _rng(3), 10.0, 0.3)
    lab0 = cv2.cvtColor(img, cv2.COLOR_RGB2LAB).reshape(-1, 3).mean(0)
    lab1 = cv2.cvtColor(out, cv2.COLOR_RGB2LAB).reshape(-1, 3).mean(0)
    assert np.abs(lab1 - lab0).max() > 2
    grey0 = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(float).ravel()
    grey1 = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY).astype(float).ravel()
    assert np.corrcoef(grey0, grey1)[0, 1] > 0.9  # the same cell, another stain


def test_vignette_darkens_and_defocus_removes_fine_detail() -> None:
    img = _smear()
    assert ca.vignette(img, _rng(), 0.8).mean() < img.mean()
    sharp = cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()
    blurred = ca.defocus(img, np.random.default_rng(7), 4.0)
    soft = cv2.Laplacian(cv2.cvtColor(blurred, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()
    assert soft < 0.5 * sharp


def test_sensor_noise_grows_with_the_shot_noise_setting() -> None:
    flat = np.full((64, 64, 3), 180, np.uint8)
    quiet = ca.sensor_noise(flat, _rng(), 0.0, 0.0)
    assert np.array_equal(quiet, flat)
    noisy = [ca.sensor_noise(flat, _rng(s), 4.0, 0.0).std() for s in range(5)]
    assert max(noisy) > 5


def test_jpeg_is_4_2_0_as_usb_cameras_send_it() -> None:
    """Fine colour detail (one-pixel red/blue stripes) loses its chroma at 4:2:0, where
    4:4:4 at the same quality keeps it."""
    img = np.zeros((64, 64, 3), np.uint8)
    img[:, 0::2] = (200, 40, 40)
    img[:, 1::2] = (40, 40, 200)

    class Top:  # a generator that always draws the top quality
        def integers(self, lo: int, hi: int) -> int:
            return 95

    sub = ca.jpeg_420(img, Top(), 90)  # type: ignore[arg-type]
    _, buf = cv2.imencode(
        ".jpg",
        img[..., ::-1],
        [
            int(cv2.IMWRITE_JPEG_QUALITY),
            95,
            int(cv2.IMWRITE_JPEG_SAMPLING_FACTOR),
            int(cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444),
        ],
    )
    full = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    err = lambda x: np.abs(x.astype(int) - img).mean()  # noqa: E731
    assert err(sub) > 3 * err(full)


def test_camera_augment_is_seeded_and_gives_the_model_input_size() -> None:
    src = np.stack([_smear(256, s) for s in range(4)])
    p = Augment.camera().camera_params()
    assert p.enabled
    a = ca.camera_batch(src, p, 11, (128, 128))
    b = ca.camera_batch(src, p, 11, (128, 128))
    c = ca.camera_batch(src, p, 12, (128, 128))
    assert a.shape == (4, 128, 128, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)  # one seed, one result: a run can be repeated
    assert not np.array_equal(a, c)
    plain = np.stack([cv2.resize(i, (128, 128), interpolation=cv2.INTER_AREA) for i in src])
    assert np.abs(a.astype(int) - plain).mean() > 2


def test_the_camera_preset_is_off_by_default_and_checked() -> None:
    assert not Augment().camera_params().enabled
    assert not Augment.robust().camera_params().enabled
    cam = Augment.camera()
    assert cam.zoom == pytest.approx(0.2)  # ±20 % scale jitter
    assert cam.to_dict()["jpeg_min_quality"] == 35  # recorded on the card
    with pytest.raises(SettingsError, match=r"defocus_px must be 0\.\.8\.0, got 20"):
        Augment(defocus_px=20)


def test_training_batches_come_from_the_high_resolution_crops() -> None:
    from micro_app.core.models.card import ModelCard, Preprocessing
    from micro_app.training.pipeline import make_dataset

    src = np.stack([_smear(128, s) for s in range(6)])
    small = np.stack([cv2.resize(i, (64, 64), interpolation=cv2.INTER_AREA) for i in src])
    card = ModelCard(
        name="t",
        version="1",
        classes=("a", "b"),
        input_size=(64, 64),
        preprocessing=Preprocessing(normalisation="none"),
    )
    labels = np.array([0, 1, 0, 1, 0, 1])
    ds = make_dataset(small, labels, card, 3, augment=Augment.camera(), sources=src, seed=1)
    x, y = next(iter(ds))
    assert tuple(x.shape) == (3, 64, 64, 3) and x.dtype.name == "float32"
    assert set(np.asarray(y).tolist()) <= {0, 1}
