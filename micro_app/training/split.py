"""Stratified train / validation / test splits over duplicate groups, and ``split.json``.

Groups (exact and near copies, see ``dataset.duplicate_groups``) are never cut: every
image of a group lands on the same side. The split is stored in the model package as
``split.json`` (relative paths, sha256 and hash of every image and its side), which is
how ``micro-app evaluate`` makes sure it never scores a training image.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.core.atomic import atomic_write_json
from micro_app.core.errors import InputError, ModelPackageError
from micro_app.training.dataset import NEAR_DUPLICATE_BITS, Sample

SPLIT_FILE = "split.json"
SIDES = ("train", "val", "test")


def _group_labels(labels: list[str], groups: np.ndarray) -> dict[int, tuple[str, list[int]]]:
    out: dict[int, tuple[str, list[int]]] = {}
    for i, g in enumerate(groups):
        if int(g) not in out:
            out[int(g)] = (labels[i], [])
        out[int(g)][1].append(i)
    return out


def stratified_split(
    labels: list[str], groups: np.ndarray, val: float, test: float, seed: int
) -> list[str]:
    """``train``/``val``/``test`` per image, about ``val`` and ``test`` of each class."""
    if not (0 <= val < 1 and 0 < test < 1 and val + test < 1):
        raise InputError(
            f"val and test shares must be in [0, 1) and sum below 1, got {val}, {test}"
        )
    rng = np.random.default_rng(seed)
    side = [""] * len(labels)
    by_group = _group_labels(labels, groups)
    for label in sorted(set(labels)):
        gids = [g for g, (lab, _) in by_group.items() if lab == label]
        gids = [gids[i] for i in rng.permutation(len(gids))]
        total = sum(len(by_group[g][1]) for g in gids)
        want = {"test": round(test * total), "val": round(val * total)}
        have = {"test": 0, "val": 0}
        for g in gids:
            members = by_group[g][1]
            if have["test"] < want["test"]:
                s = "test"
            elif have["val"] < want["val"]:
                s = "val"
            else:
                s = "train"
            if s != "train":
                have[s] += len(members)
            for i in members:
                side[i] = s
    return side


def stratified_folds(labels: list[str], groups: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold 0..k-1 per image: groups of each class dealt to the fold with fewest images."""
    if not 2 <= k <= 50:
        raise InputError(f"folds must be 2..50, got {k}")
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(labels), int)
    by_group = _group_labels(labels, groups)
    for label in sorted(set(labels)):
        gids = [g for g, (lab, _) in by_group.items() if lab == label]
        gids = [gids[i] for i in rng.permutation(len(gids))]
        gids.sort(key=lambda g: -len(by_group[g][1]))  # big groups first, stable
        count = np.zeros(k, int)
        for g in gids:
            f = int(np.argmin(count))
            members = by_group[g][1]
            count[f] += len(members)
            fold[members] = f
    return fold


def fold_sides(fold: np.ndarray, k: int, index: int) -> list[str]:
    """Fold ``index`` is the test set, the next fold the validation set, the rest train."""
    val_fold = (index + 1) % k
    return ["test" if f == index else "val" if f == val_fold else "train" for f in fold]


def split_record(
    root: Path,
    samples: list[Sample],
    sides: list[str],
    groups: np.ndarray,
    meta: dict[str, Any],
) -> dict[str, Any]:
    counts = {s: {} for s in SIDES}  # type: dict[str, dict[str, int]]
    for smp, side in zip(samples, sides, strict=True):
        counts[side][smp.label] = counts[side].get(smp.label, 0) + 1
    return {
        "dataset": str(Path(root).resolve()),
        "dataset_name": Path(root).name,
        "duplicates": {
            "exact": "sha256 of the file",
            "near": f"128-bit difference hash within {NEAR_DUPLICATE_BITS} bits",
            "groups": len(set(groups.tolist())),
            "images_in_shared_groups": int(np.sum(np.bincount(groups)[groups] > 1)),
        },
        "counts": counts,
        **meta,
        "images": [
            {**asdict(smp), "split": side, "group": int(g)}
            for smp, side, g in zip(samples, sides, groups, strict=True)
        ],
    }


def write_split(path: Path, record: dict[str, Any]) -> Path:
    return atomic_write_json(path, record)


def read_split(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelPackageError(f"cannot read {path} ({exc}): re-train the model") from exc
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ModelPackageError(f"{path} is not a micro_app split: re-train the model")
    return data
