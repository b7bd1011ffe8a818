"""The split keeps exact and near copies on one side, stays stratified, and is stored."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from micro_app.training.dataset import (
    dataset_info,
    dhash128,
    duplicate_groups,
    list_dataset,
    near_pairs,
    read_samples,
    subsample,
)
from micro_app.training.split import fold_sides, stratified_folds, stratified_split

CLASSES = ("alpha", "beta", "gamma")


def _smooth_image(rng: np.random.Generator, size: int = 96) -> np.ndarray:
    """A distinct, smooth picture (blurred noise), so hashes behave as on photographs."""
    noise = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
    return cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """3 classes x 15 images, plus an exact copy and a near copy (JPEG 60 of a 90 px
    resize) of two 'alpha' images under other names."""
    rng = np.random.default_rng(1)
    root = tmp_path / "cells"
    for cls in CLASSES:
        (root / cls).mkdir(parents=True)
        for i in range(15):
            cv2.imwrite(str(root / cls / f"{cls}_{i:02d}.png"), _smooth_image(rng))
    shutil.copy(root / "alpha" / "alpha_00.png", root / "alpha" / "zz_exact_copy.png")
    img = cv2.imread(str(root / "alpha" / "alpha_01.png"))
    small = cv2.resize(img, (90, 90), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(root / "alpha" / "zz_near_copy.jpg"), small, [cv2.IMWRITE_JPEG_QUALITY, 60])
    return root


def test_exact_and_near_copies_share_a_group(dataset: Path) -> None:
    items = list_dataset(dataset)
    samples, images = read_samples(dataset, items, (32, 32))
    assert images is not None and images.shape == (47, 32, 32, 3)
    groups = duplicate_groups(samples)
    index = {s.path: i for i, s in enumerate(samples)}
    assert groups[index["alpha/alpha_00.png"]] == groups[index["alpha/zz_exact_copy.png"]]
    assert groups[index["alpha/alpha_01.png"]] == groups[index["alpha/zz_near_copy.jpg"]]
    assert len(set(groups.tolist())) == 45  # every other image stands alone


@pytest.mark.parametrize("seed", range(8))
def test_a_copy_never_sits_on_both_sides_of_the_split(dataset: Path, seed: int) -> None:
    items = list_dataset(dataset)
    samples, _ = read_samples(dataset, items, None)
    groups = duplicate_groups(samples)
    labels = [s.label for s in samples]
    sides = stratified_split(labels, groups, 0.2, 0.2, seed)
    side = {s.path: sd for s, sd in zip(samples, sides, strict=True)}
    assert side["alpha/alpha_00.png"] == side["alpha/zz_exact_copy.png"]
    assert side["alpha/alpha_01.png"] == side["alpha/zz_near_copy.jpg"]
    for cls in CLASSES:  # stratified: about 20 % of each class in val and test
        n = {sd: sum(1 for lab, s2 in zip(labels, sides, strict=True) if lab == cls and s2 == sd)
             for sd in ("train", "val", "test")}  # fmt: skip
        assert 2 <= n["test"] <= 4 and 2 <= n["val"] <= 4, n
    folds = stratified_folds(labels, groups, 5, seed)
    for k in range(5):
        fs = fold_sides(folds, 5, k)
        fside = {s.path: sd for s, sd in zip(samples, fs, strict=True)}
        assert fside["alpha/alpha_00.png"] == fside["alpha/zz_exact_copy.png"]
        assert fside["alpha/alpha_01.png"] == fside["alpha/zz_near_copy.jpg"]
    assert sorted(np.bincount(folds).tolist()) in ([9, 9, 9, 9, 11], [9, 9, 9, 10, 10])


def test_hash_distance_separates_copies_from_other_images() -> None:
    rng = np.random.default_rng(0)
    a, b = _smooth_image(rng), _smooth_image(rng)
    _, buf = cv2.imencode(".jpg", cv2.resize(a, (88, 88)), [cv2.IMWRITE_JPEG_QUALITY, 60])
    a2 = cv2.resize(cv2.imdecode(buf, cv2.IMREAD_COLOR), (96, 96))
    ha, ha2, hb = dhash128(a), dhash128(a2), dhash128(b)
    assert len(ha) == 32
    assert near_pairs([ha], [ha2]).shape == (1, 2)
    assert near_pairs([ha], [hb]).shape == (0, 2)


def test_subsample_and_class_selection(dataset: Path) -> None:
    items = list_dataset(dataset, ["beta", "gamma"])
    assert {lab for _, lab in items} == {"beta", "gamma"}
    few = subsample(items, 4, seed=3)
    assert sorted(lab for _, lab in few) == ["beta"] * 4 + ["gamma"] * 4
    assert subsample(items, 4, seed=3) == few
    from micro_app.core.errors import InputError

    with pytest.raises(InputError, match="delta"):
        list_dataset(dataset, ["beta", "delta"])


def test_dataset_licence_comes_from_flags_file_or_known_name(tmp_path: Path) -> None:
    pbc = tmp_path / "pbc"
    pbc.mkdir()
    assert dataset_info(pbc)["licence"] == "CC BY 4.0"
    other = tmp_path / "mine"
    other.mkdir()
    assert dataset_info(other)["licence"] == "unknown"
    (other / "dataset.json").write_text('{"licence": "CC0", "name": "my lab"}')
    assert dataset_info(other)["name"] == "my lab"
    assert dataset_info(other, {"licence": "CC BY-NC"})["licence"] == "CC BY-NC"
