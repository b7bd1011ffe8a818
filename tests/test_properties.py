"""Property-based tests (hypothesis): whatever bytes, shapes, pixel types or JSON a user's
files hold, decoding, preprocessing, locating and reading cards and settings either work
or fail with the app's own one-line error, never with a traceback."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import cv2
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from micro_app.core.errors import MicroAppError
from micro_app.core.imageio import read_image_rgb
from micro_app.core.locate import LocateParams, locate_cells
from micro_app.core.models.card import ModelCard
from micro_app.core.preprocess import PreprocessParams, nucleus_mask
from micro_app.core.scale import estimate_um_per_px
from micro_app.core.settings import AppSettings

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.binary(max_size=2048), st.sampled_from([".png", ".jpg", ".tif", ".bmp"]))
def test_any_bytes_decode_or_give_one_line(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"x{suffix}"
        path.write_bytes(data)
        try:
            img = read_image_rgb(path)
        except MicroAppError as exc:
            assert "\n" not in str(exc)
        else:
            assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3


@FAST
@given(
    arrays(
        dtype=st.sampled_from([np.uint8, np.uint16]),
        shape=st.tuples(st.integers(1, 120), st.integers(1, 120), st.sampled_from([1, 3, 4])),
    )
)
def test_any_image_encodes_decodes_and_is_located_without_error(img: np.ndarray) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.png"
        cv2.imwrite(str(path), img)
        rgb = read_image_rgb(path)
    assert rgb.shape[:2] == img.shape[:2]
    assert nucleus_mask(rgb, PreprocessParams()).shape == rgb.shape[:2]
    result = locate_cells(rgb, PreprocessParams(), LocateParams())
    assert result.mask.shape == rgb.shape[:2]
    est = estimate_um_per_px(rgb)
    assert est is None or est > 0


@FAST
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "name",
                "version",
                "classes",
                "input_size",
                "crop",
                "preprocessing",
                "weights",
                "temperature",
                "unidentified_threshold",
                "scope",
                "extra",
            ]
        ),
        JSON,
        max_size=8,
    )
)
def test_any_card_json_is_read_or_refused_in_one_line(data: dict) -> None:  # type: ignore[type-arg]
    base = {"name": "m", "version": "1", "classes": ["a", "b"], "input_size": [32, 32]}
    try:
        card = ModelCard.from_dict({**base, **data})
    except MicroAppError as exc:
        assert "\n" not in str(exc)
    else:
        json.dumps(card.to_dict())
        card.identity()


@FAST
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "source",
                "model_dir",
                "objectives",
                "objective",
                "watch",
                "differential_target",
                "engine",
                "preprocess",
                "locate",
                "microscopes",
                "backend",
                "snapshot_dir",
            ]
        ),
        JSON,
        max_size=6,
    )
)
def test_any_settings_json_is_read_or_set_aside(data: dict) -> None:  # type: ignore[type-arg]
    from micro_app.core.settings import load_settings

    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "settings.json").write_text(json.dumps(data, allow_nan=True))
        got = load_settings(Path(d))
    assert isinstance(got, AppSettings)
    AppSettings.from_dict(got.to_dict())  # what is used is always valid
