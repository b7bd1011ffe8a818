"""The cells the lab labelled: corrections from review and cells labelled on purpose.

A folder of class folders (``<class>/<id>.png``, crops exactly as the model saw them) with
an index, ``cells.json``, that records for each cell its label, where it came from
(``correction``, ``confirmed`` or ``teach``), what the model had said, the slide and the
time, and whether it is a *training* or a *held-back* cell. That last choice is made once,
when the cell is added (every fourth cell of a class, from the third on, is held back), and
never changes: a held-back cell never trains any model, so before/after numbers on the
held-back cells stay honest over many teaching rounds. The folder also works as
``micro-app adapt --labels DIR`` and as a ``micro-app train`` dataset.

Plain class folders without ``cells.json`` (crops from elsewhere) are read with the same
rule, applied in the order of each image's sha256.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import threading
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from micro_app.core.atomic import atomic_write_bytes, atomic_write_json
from micro_app.core.confine import inside, no_link_out
from micro_app.core.errors import InputError
from micro_app.core.imageio import list_images, read_image_rgb
from micro_app.core.models.gradcam import resize_to_input

INDEX_FILE = "cells.json"
SOURCES = ("correction", "confirmed", "teach", "import")
SPLITS = ("train", "holdout")


def split_for(position: int) -> str:
    """Training or held back, for the ``position``-th cell (from 0) added to a class."""
    return "holdout" if position % 4 == 2 else "train"


@dataclass(frozen=True)
class LabelledCell:
    cell_id: str
    label: str
    split: str
    source: str
    file: str  # relative to the store, ``<class>/<id>.png``
    predicted: str | None = None
    slide: str = ""
    model: str = ""
    time: str = ""
    key: str = ""  # the same cell seen again (slide and track) is relabelled, not re-added


@dataclass
class LabelledSet:
    """Labelled cells as arrays, split into training and held-back cells."""

    train_images: np.ndarray
    train_labels: np.ndarray  # indices into ``classes``
    holdout_images: np.ndarray
    holdout_labels: np.ndarray
    classes: tuple[str, ...]
    skipped: dict[str, int]  # labels the model has no class for, with their counts

    def counts(self, split: str = "train") -> dict[str, int]:
        labels = self.train_labels if split == "train" else self.holdout_labels
        n = np.bincount(labels, minlength=len(self.classes))
        return {c: int(k) for c, k in zip(self.classes, n, strict=True) if k}


class LabelledStore:
    """One lab's labelled cells in a folder; every write is atomic."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        self._cells: dict[str, LabelledCell] = {}
        self._added: dict[str, int] = {}
        path = self.root / INDEX_FILE
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                self._cells = {c["cell_id"]: LabelledCell(**c) for c in data["cells"]}
                self._added = {str(k): int(v) for k, v in data.get("added", {}).items()}
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise InputError(
                    f"{path} is not a labelled-cell index ({exc}): restore it from a backup "
                    "or move the folder away to start a new one"
                ) from exc

    @staticmethod
    def default_root() -> Path:
        from micro_app.core.paths import data_dir

        return data_dir() / "labelled_cells"

    def cells(self) -> list[LabelledCell]:
        with self._lock:
            return sorted(self._cells.values(), key=lambda c: (c.label, c.time, c.cell_id))

    def __len__(self) -> int:
        return len(self._cells)

    def find(self, key: str) -> LabelledCell | None:
        with self._lock:
            return next((c for c in self._cells.values() if key and c.key == key), None)

    def _file(self, cell: LabelledCell) -> Path:
        return inside(self.root, cell.file, f"cells.json (cell {cell.cell_id})", InputError)

    def image(self, cell: LabelledCell) -> np.ndarray:
        return read_image_rgb(self._file(cell))

    def add(
        self,
        crop: np.ndarray,
        label: str,
        *,
        source: str,
        predicted: str | None = None,
        slide: str = "",
        model: str = "",
        key: str = "",
    ) -> LabelledCell:
        """Store one crop (uint8 RGB) with its label; a cell with the same ``key`` is
        relabelled instead of stored twice."""
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
        _check_label(label)
        existing = self.find(key)
        if existing is not None:
            return self.relabel(existing.cell_id, label, source=source)
        ok, png = cv2.imencode(".png", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        if not ok:
            raise InputError("could not encode the cell image as PNG")
        with self._lock:
            cell_id = uuid.uuid4().hex[:12]
            position = self._added.get(label, 0)
            cell = LabelledCell(
                cell_id=cell_id,
                label=label,
                split=split_for(position),
                source=source,
                file=f"{label}/{cell_id}.png",
                predicted=predicted,
                slide=slide,
                model=model,
                time=_dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                key=key,
            )
            atomic_write_bytes(self.root / cell.file, png.tobytes())
            self._cells[cell_id] = cell
            self._added[label] = position + 1
            self._save()
        return cell

    def relabel(self, cell_id: str, label: str, *, source: str | None = None) -> LabelledCell:
        """Give a stored cell another label (its file moves; its split stays)."""
        _check_label(label)
        with self._lock:
            cell = self._cells.get(cell_id)
            if cell is None:
                raise KeyError(f"no labelled cell {cell_id!r}")
            new = replace(
                cell, label=label, file=f"{label}/{cell_id}.png", source=source or cell.source
            )
            if new.file != cell.file:
                old_path = self._file(cell)  # checked before anything moves
                target = inside(self.root, new.file, "a new label", InputError)
                target.parent.mkdir(parents=True, exist_ok=True)
                old_path.replace(target)
            self._cells[cell_id] = new
            self._save()
        return new

    def remove(self, cell_id: str) -> None:
        with self._lock:
            cell = self._cells.get(cell_id)
            if cell is None:
                return
            path = self._file(cell)  # refused before the index changes
            del self._cells[cell_id]
            self._save()
            path.unlink(missing_ok=True)

    def _save(self) -> None:
        data = {
            "format": 1,
            "added": self._added,
            "cells": [asdict(c) for c in self._cells.values()],
        }
        atomic_write_json(self.root / INDEX_FILE, data)

    def to_set(
        self, classes: tuple[str, ...], size: tuple[int, int], add_classes: bool = False
    ) -> LabelledSet:
        cells = self.cells()
        images = [resize_to_input(self.image(c), size) for c in cells]
        labels, splits = [c.label for c in cells], [c.split for c in cells]
        return _as_set(labels, splits, images, classes, size, add_classes)


def read_labels(
    root: Path, classes: tuple[str, ...], size: tuple[int, int], add_classes: bool = False
) -> LabelledSet:
    """Labelled cells from a store folder, or from plain class folders of crops.
    ``add_classes``: a label the model lacks becomes a new class (``adapt.classes``)
    instead of being skipped."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"labels folder {root} does not exist: give a folder of class folders")
    if (root / INDEX_FILE).is_file():
        return LabelledStore(root).to_set(classes, size, add_classes)
    labels, splits, images = [], [], []
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for folder in folders:
        no_link_out(root, folder, "the class folder", InputError)
        files = sorted(
            list_images(folder), key=lambda p: hashlib.sha256(p.read_bytes()).hexdigest()
        )
        for k, path in enumerate(files):
            labels.append(folder.name)
            splits.append(split_for(k))
            images.append(resize_to_input(read_image_rgb(path), size))
    if not labels:
        raise InputError(f"{root} holds no labelled cells: arrange crops as {root}/<class>/<image>")
    return _as_set(labels, splits, images, classes, size, add_classes)


def _as_set(
    labels: list[str],
    splits: list[str],
    images: list[np.ndarray],
    classes: tuple[str, ...],
    size: tuple[int, int],
    add_classes: bool = False,
) -> LabelledSet:
    if add_classes:
        from micro_app.adapt.classes import MIN_NEW_CLASS_CELLS, split_known

        grown, labels = split_known(labels, classes)
        # a new class with too few cells to train and check is left out (and reported)
        n = {c: labels.count(c) for c in grown[len(classes) :]}
        classes = classes + tuple(c for c in grown[len(classes) :] if n[c] > MIN_NEW_CLASS_CELLS)
    skipped: dict[str, int] = {}
    keep = []
    for i, lab in enumerate(labels):
        if lab in classes:
            keep.append(i)
        else:
            skipped[lab] = skipped.get(lab, 0) + 1
    empty = np.zeros((0, *size, 3), np.uint8)

    def side(name: str) -> tuple[np.ndarray, np.ndarray]:
        idx = [i for i in keep if splits[i] == name]
        x = np.stack([images[i] for i in idx]) if idx else empty
        return x, np.array([classes.index(labels[i]) for i in idx], int)

    tx, ty = side("train")
    hx, hy = side("holdout")
    return LabelledSet(tx, ty, hx, hy, classes, skipped)


def _check_label(label: str) -> None:
    if not label or "/" in label or "\\" in label or label.startswith("."):
        raise ValueError(f"a class name cannot be used as a folder name: {label!r}")
