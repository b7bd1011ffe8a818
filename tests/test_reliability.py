"""Hostile but fair input: files that name paths outside their folder, images too large
or too thin, broken cards and settings, multi-page TIFFs; one good input beside each bad
one, which must still be processed. Each case fails without its handling."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile

from micro_app.adapt.labelled import LabelledStore, read_labels
from micro_app.core.errors import InputError, ModelPackageError
from micro_app.core.imageio import read_image_rgb
from micro_app.core.models import load_package
from micro_app.core.models.card import ModelCard
from micro_app.core.settings import load_settings
from micro_app.core.sources.demo import DemoSource


def _field() -> np.ndarray:
    src = DemoSource(rate=None, seed=3)
    src.open()
    for _ in range(200):
        frame = src.read()
        assert frame is not None
        if src.last_truth:
            return frame.image
    raise AssertionError("no demo frame with a white cell")


def _png_header(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims ``width`` x ``height`` (its pixels are cut short)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk
    data += struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)
    path.write_bytes(data + b"\x00" * 64)


# -- confinement -------------------------------------------------------------------------
def test_a_labelled_store_index_naming_a_file_outside_never_touches_it(tmp_path: Path) -> None:
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    store = LabelledStore(tmp_path / "store")
    cell = store.add(np.zeros((8, 8, 3), np.uint8), "neutrophil", source="teach")
    index = tmp_path / "store" / "cells.json"
    for bad in ("../precious.txt", str(victim)):
        doc = json.loads(index.read_text())
        doc["cells"][0]["file"] = bad
        index.write_text(json.dumps(doc))
        hacked = LabelledStore(tmp_path / "store")
        for act in (
            lambda s=hacked: s.remove(cell.cell_id),
            lambda s=hacked: s.relabel(cell.cell_id, "monocyte"),
            lambda s=hacked: s.image(s.cells()[0]),
        ):
            with pytest.raises(InputError, match="outside its folder"):
                act()
        assert victim.read_text() == "keep me"


def test_package_files_outside_the_package_are_refused(tmp_path: Path, tiny_package: Path) -> None:
    outside = tmp_path / "elsewhere.keras"
    shutil.copy(tiny_package / "model.keras", outside)
    for name in ("../elsewhere.keras", str(outside)):
        pkg = tmp_path / f"pkg{len(name)}"
        shutil.copytree(tiny_package, pkg)
        card = json.loads((pkg / "card.json").read_text())
        card["weights"]["keras"]["file"] = name
        (pkg / "card.json").write_text(json.dumps(card))
        with pytest.raises(ModelPackageError, match="outside its folder"):
            load_package(pkg)


def test_a_class_folder_that_is_a_link_elsewhere_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "secret"
    elsewhere.mkdir()
    cv2.imwrite(str(elsewhere / "a.png"), np.zeros((8, 8, 3), np.uint8))
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "neutrophil").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(InputError, match="links outside"):
        read_labels(labels, ("neutrophil", "monocyte"), (8, 8))


# -- images: bounded, one bad one never costs the others ------------------------------------
def test_bad_images_are_one_line_each_and_the_good_one_is_classified(
    tmp_path: Path, tiny_package: Path
) -> None:
    from micro_app.cli.classify import classify_paths
    from micro_app.core.engine import Engine

    inputs = tmp_path / "in"
    inputs.mkdir()
    cv2.imwrite(str(inputs / "a_good.png"), _field()[..., ::-1])
    cv2.imwrite(str(inputs / "b_sliver.png"), np.full((5, 5000, 3), 200, np.uint8))
    _png_header(inputs / "c_huge.png", 60000, 60000)
    (inputs / "d_truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 40)
    pages = np.stack([_field(), _field()[::-1]])
    tifffile.imwrite(inputs / "e_pages.tif", pages)
    said: list[str] = []
    report = classify_paths(
        Engine(load_package(tiny_package)),
        [inputs],
        tmp_path / "out",
        on_error=lambda _p, msg: said.append(msg),
    )
    names = sorted(p.name for p in report.written)
    assert "a_good.json" in names
    assert {"e_pages_p001.json", "e_pages_p002.json"} <= set(names)  # every page
    assert "b_sliver.json" in names  # processed: no cell in a 5-pixel sliver, no traceback
    assert len(said) == 2 and all("\n" not in m for m in said)
    assert any("c_huge.png is 60000x60000" in m and "80 MP" in m for m in said)
    assert (tmp_path / "out" / "summary.csv").is_file()


def test_a_huge_image_is_refused_before_it_is_decoded(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    _png_header(path, 20000, 20000)
    with pytest.raises(InputError, match=re.escape("20000x20000 (400 MP), above the 80 MP")):
        read_image_rgb(path)


def test_a_large_jpeg_is_decoded_at_a_fraction_of_its_size(tmp_path: Path) -> None:
    img = np.full((1200, 1000, 3), 128, np.uint8)
    path = tmp_path / "big.jpg"
    cv2.imwrite(str(path), img)
    small = read_image_rgb(path, max_pixels=400_000)  # 1.2 MP > budget: half size
    assert small.shape == (600, 500, 3)


# -- cards and settings --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": 5}, "card 'name' must be text"),
        ({"version": ["1"]}, "card 'version' must be text"),
        ({"weights": ["model.keras"]}, "card 'weights' must be an object"),
        ({"classes": "basophil"}, "card 'classes' must be a list of class names"),
        ({"crop": {"size_um": "big"}}, "crop 'size_um' must be 1..500"),
        ({"crop": {"size_um": 1e300}}, "crop 'size_um' must be 1..500"),
        ({"crop": {"size_um": -5}}, "crop 'size_um' must be 1..500"),
        ({"preprocessing": {"median": "yes"}}, "preprocessing 'median' must be true or false"),
    ],
)
def test_a_broken_card_is_one_line(tiny_package: Path, change: dict, message: str) -> None:  # type: ignore[type-arg]
    doc = {**json.loads((tiny_package / "card.json").read_text()), **change}
    with pytest.raises(ModelPackageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ModelCard.from_dict(doc)


def test_packages_that_label_cells_differently_never_share_an_identity(tiny_package: Path) -> None:
    card = ModelCard.read(tiny_package)
    doc = card.to_dict()
    doc["classes"] = list(reversed(doc["classes"]))  # same weights, classes swapped
    swapped = ModelCard.from_dict(doc)
    assert swapped.summary()["sha256"] == card.summary()["sha256"]
    assert swapped.identity() != card.identity()


def test_broken_settings_are_set_aside_with_a_time_and_never_over_an_earlier_one(
    tmp_path: Path,
) -> None:
    for bad in ({"watch": "abc"}, {"objectives": []}, {"model_dir": 5}, {"source": 5}):
        (tmp_path / "settings.json").write_text(json.dumps(bad))
        assert load_settings(tmp_path).source == "auto"  # defaults, no traceback
        assert not (tmp_path / "settings.json").exists()
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert len(kept) == 4 and all(p.startswith("settings.json.bad-") for p in kept)


def test_exports_get_the_users_normal_permissions(tmp_path: Path) -> None:
    from micro_app.core.atomic import FILE_MODE, atomic_write_bytes

    path = atomic_write_bytes(tmp_path / "x.png", b"data")
    if os.name == "posix":
        assert path.stat().st_mode & 0o777 == FILE_MODE and FILE_MODE & 0o044
