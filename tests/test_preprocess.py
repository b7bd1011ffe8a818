"""Each preprocessing step on fixed arrays, and the settings' validation."""

from __future__ import annotations

import json
import re

import cv2
import numpy as np
import pytest

from micro_app.core.errors import SettingsError
from micro_app.core.preprocess import (
    NORMALISATIONS,
    PreprocessParams,
    median,
    normalise,
    nucleus_mask,
    resize,
    sharpen,
    threshold,
    to_hsv,
)

PURPLE = (90, 40, 160)  # RGB of a stained nucleus: OpenCV hue 132, S 191, V 160


def test_resize_keeps_aspect_and_none_is_unchanged() -> None:
    img = np.zeros((200, 400, 3), np.uint8)
    assert resize(img, 100).shape == (50, 100, 3)
    assert resize(img, 800).shape == (400, 800, 3)
    assert resize(img, None) is img
    assert resize(img, 400) is img


def test_median_removes_salt_noise() -> None:
    img = np.full((40, 40, 3), 80, np.uint8)
    rng = np.random.default_rng(0)
    ys, xs = rng.integers(1, 39, 30), rng.integers(1, 39, 30)
    img[ys, xs] = 255
    out = median(img, 3)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.all(out == 80)
    assert np.array_equal(median(img, 1), img)
    with pytest.raises(ValueError, match="odd"):
        median(img, 4)


def test_sharpen_increases_edge_contrast_and_keeps_flat_areas() -> None:
    img = np.full((20, 20, 3), 100, np.uint8)
    img[:, 10:] = 150
    out = sharpen(img).astype(int)
    assert out[5, 9, 0] < 100 and out[5, 10, 0] > 150  # overshoot on both sides of the edge
    assert out[5, 10, 0] - out[5, 9, 0] > 50
    assert out[5, 2, 0] == 100 and out[5, 17, 0] == 150


@pytest.mark.parametrize(
    ("rgb", "hsv"),
    [
        ((255, 0, 0), (0, 255, 255)),
        ((0, 255, 0), (60, 255, 255)),
        ((0, 0, 255), (120, 255, 255)),
        ((255, 255, 255), (0, 0, 255)),
        ((128, 0, 128), (150, 255, 128)),
    ],
)
def test_to_hsv_uses_opencv_ranges(rgb: tuple[int, int, int], hsv: tuple[int, int, int]) -> None:
    img = np.array([[rgb]], np.uint8)
    assert tuple(int(v) for v in to_hsv(img)[0, 0]) == hsv


def test_threshold_bounds_are_inclusive() -> None:
    lower, upper = (115, 70, 40), (160, 255, 255)
    px = [(115, 70, 40), (160, 255, 255), (114, 200, 200), (161, 200, 200), (130, 69, 200)]
    hsv = np.array([px], np.uint8)
    mask = threshold(hsv, lower, upper)
    assert mask.dtype == np.uint8
    assert mask[0].tolist() == [255, 255, 0, 0, 0]


def test_nucleus_mask_is_frame_sized_after_a_working_resize() -> None:
    img = np.full((480, 640, 3), (225, 225, 215), np.uint8)
    cv2.circle(img, (200, 240), 40, PURPLE, -1)
    mask = nucleus_mask(img, PreprocessParams(width=320))
    assert mask.shape == (480, 640) and mask.dtype == np.uint8
    assert set(np.unique(mask)) == {0, 255}
    assert mask[240, 200] == 255 and mask[240, 400] == 0
    assert abs(np.count_nonzero(mask) - np.pi * 40**2) < 0.1 * np.pi * 40**2
    small = np.full((100, 120, 3), 200, np.uint8)
    assert nucleus_mask(small, PreprocessParams(width=320)).shape == (100, 120)


def test_normalise_modes() -> None:
    batch = np.array([[[[0, 127, 255]]]], np.uint8)
    for mode in NORMALISATIONS:
        assert normalise(batch, mode).dtype == np.float32
    np.testing.assert_allclose(normalise(batch, "none")[0, 0, 0], [0, 127, 255])
    np.testing.assert_allclose(normalise(batch, "unit")[0, 0, 0], [0, 127 / 255, 1])
    np.testing.assert_allclose(normalise(batch, "symmetric")[0, 0, 0], [-1, 127 / 127.5 - 1, 1])
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    expected = (np.array([0, 127, 255]) / 255 - mean) / std
    np.testing.assert_allclose(normalise(batch, "imagenet")[0, 0, 0], expected, rtol=1e-5)


def test_normalise_unknown_mode_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"'caffe'.*none, unit, symmetric, imagenet"):
        normalise(np.zeros((1, 2, 2, 3), np.uint8), "caffe")


def test_params_round_trip_through_json() -> None:
    p = PreprocessParams(width=None, median_ksize=5, sharpen=False, lower_hsv=(120, 60, 0))
    again = PreprocessParams.from_dict(json.loads(json.dumps(p.to_dict())))
    assert again == p
    assert again.lower_hsv == (120, 60, 0)


@pytest.mark.parametrize(
    ("kwargs", "quoted"),
    [
        ({"width": 8}, "8"),
        ({"width": 320.5}, "320.5"),
        ({"median_ksize": 4}, "4"),
        ({"median_ksize": 0}, "0"),
        ({"sharpen": 1}, "1"),
        ({"lower_hsv": (180, 0, 0)}, "180"),
        ({"upper_hsv": (179, 256, 255)}, "256"),
        ({"lower_hsv": (1, 2)}, "(1, 2)"),
        ({"lower_hsv": (150, 0, 0), "upper_hsv": (140, 255, 255)}, "(150, 0, 0)"),
    ],
)
def test_params_validation_quotes_the_bad_value(kwargs: dict, quoted: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(quoted)):
        PreprocessParams(**kwargs)


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(SettingsError, match="hue_shift"):
        PreprocessParams.from_dict({"width": 320, "hue_shift": 3})
