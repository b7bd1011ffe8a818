"""Atomic writes and snapshots: complete files or none, never an overwrite."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from micro_app.core.atomic import atomic_write, atomic_write_bytes, atomic_write_json
from micro_app.core.export import SIDECAR_SCHEMA, write_snapshot
from micro_app.core.geometry import Box
from micro_app.core.overlay import OverlayOptions, draw_overlay, nice_length_um
from micro_app.core.results import CellResult, FrameResult


def _result(scale_source: str = "estimated") -> FrameResult:
    cell = CellResult(
        box=Box(10, 10, 40, 40),
        nucleus_box=Box(18, 18, 32, 32),
        label="lymphocyte",
        confidence=0.91,
        probabilities={"lymphocyte": 0.91, "monocyte": 0.09},
    )
    return FrameResult(
        frame_seq=7,
        timestamp=0.0,
        image_size=(60, 80),
        cells=(cell,),
        um_per_px=0.25,
        scale_source=scale_source,
        latency_ms=12.5,
        model={
            "name": "m",
            "version": "1",
            "scope": "cell",
            "classes": ["lymphocyte", "monocyte"],
            "sha256": "ab" * 32,
        },
        threshold=0.5,
        device="CPU",
    )


def _image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)


def test_atomic_write_leaves_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    atomic_write_json(target, {"v": 1})

    def boom(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert json.loads(target.read_text()) == {"v": 1}  # the earlier file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]  # no temp file left


def test_atomic_write_without_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "x.bin"
    atomic_write_bytes(target, b"first", overwrite=False)
    with pytest.raises(FileExistsError):
        atomic_write_bytes(target, b"second", overwrite=False)
    assert target.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_snapshot_writes_three_files_and_never_overwrites(tmp_path: Path) -> None:
    img = _image()
    res = _result("calibrated")
    first = write_snapshot(
        tmp_path,
        img,
        res,
        draw_overlay(img, res),
        stem="snap",
        source={"kind": "demo"},
        settings={"x": 1},
    )
    second = write_snapshot(tmp_path, img, res, draw_overlay(img, res), stem="snap")
    assert first.sidecar.name == "snap.json" and second.sidecar.name == "snap_001.json"
    assert len({first.raw, second.raw, first.annotated, second.annotated}) == 4
    doc = json.loads(first.sidecar.read_text())
    assert doc["schema"] == SIDECAR_SCHEMA
    assert doc["files"] == {"annotated": "snap_annotated.png", "raw": "snap.ome.tif"}
    assert doc["source"] == {"kind": "demo"} and doc["settings"] == {"x": 1}
    assert doc["model"]["sha256"] == "ab" * 32
    assert doc["calibrated_um_per_px"] == 0.25
    cell = doc["cells"][0]
    assert cell["box"] == [10, 10, 40, 40] and cell["label"] == "lymphocyte"
    assert cell["probabilities"] == {"lymphocyte": 0.91, "monocyte": 0.09}
    # the raw frame is an OME-TIFF with the pixel size, identical to the frame
    with tifffile.TiffFile(first.raw) as tif:
        assert tif.is_ome
        np.testing.assert_array_equal(tif.asarray(), img)
        assert 'PhysicalSizeX="0.25"' in tif.ome_metadata


def test_uncalibrated_snapshot_has_no_physical_size(tmp_path: Path) -> None:
    img = _image()
    res = _result("estimated")
    paths = write_snapshot(tmp_path, img, res, img, stem="s")
    assert json.loads(paths.sidecar.read_text())["calibrated_um_per_px"] is None
    with tifffile.TiffFile(paths.raw) as tif:
        assert "PhysicalSizeX" not in tif.ome_metadata


def test_overlay_draws_boxes_without_touching_the_frame() -> None:
    img = np.full((60, 80, 3), 128, np.uint8)
    before = img.copy()
    out = draw_overlay(img, _result(), OverlayOptions(labels=False))
    np.testing.assert_array_equal(img, before)
    assert (out[10, 10:40] != 128).any(axis=-1).all()  # top edge of the box is drawn
    assert (out[25, 25] == 128).all()  # inside the box untouched


def test_scale_bar_lengths_are_round() -> None:
    assert nice_length_um(0.1, 1000) == 20.0
    assert nice_length_um(0.5, 640) == 50.0
    assert nice_length_um(1.0, 640) == 100.0
