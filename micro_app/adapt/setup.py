"""Set up a model for one microscope, guided, in about ten minutes (the window's "Set up
this microscope" and its tests drive this; no Qt here):

1. collect fields while the technician moves the slide (or add a folder of fields);
2. calibrate without labels on their cells (``microscope.calibrate``: batch-norm re-based
   where the guard finds it safe, this microscope added to the unlike-the-training-images
   check);
3. the calibrated model suggests a class for every collected cell; grouped by suggested
   class, the typical cells of each kind first (``adapt.select``), the technician confirms or
   corrects each (one key or click per cell), until each class has about ``per_class``
   cells; a class the model lacks (``blast`` is offered; others by name) is added the same
   way (``adapt.classes``);
4. teach those cells (``teach.teach``), with the other collected cells pseudo-labelled:
   every fourth labelled cell of a class, from the third on, is held back and never
   trained on; before and after are scored on those. Teaching starts from the calibrated
   model, or from the shipped one when that is right on more of the labelled cells
   (neither was trained on them); the new version keeps the calibrated
   unlike-the-training-images check either way, which describes this microscope's cells
   whatever the network;
5. use it: the window remembers the model for this microscope (camera + objective).

Every labelled cell is also kept in the lab's labelled-cell store for later teaching.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.adapt.classes import MIN_NEW_CLASS_CELLS, SUGGESTED, check_new_class
from micro_app.adapt.labelled import LabelledSet, LabelledStore, _as_set, split_for
from micro_app.adapt.library import NewVersion
from micro_app.adapt.microscope import MIN_CELLS, calibrate
from micro_app.adapt.scoring import score_cells
from micro_app.adapt.select import grid_order
from micro_app.adapt.teach import MIN_TRAIN_CELLS, TeachConfig, teach
from micro_app.core.engine import Engine
from micro_app.core.errors import InputError
from micro_app.core.models.classifier import Classifier
from micro_app.core.models.package import ModelPackage, load_package
from micro_app.core.startup import microscope_key as microscope_key  # how a set-up is remembered

SKIP = "not a white cell"  # a located thing that is no white cell: not taught
PER_CLASS = 10
Progress = Callable[[str, float], None]


@dataclass
class Suggestion:
    crop: np.ndarray  # the cell as the model sees it
    field: int  # which collected field it came from
    predicted: str  # the calibrated model's class for it
    confidence: float
    label: str | None = None  # what the technician said: a class, SKIP, or None (not yet)


class MicroscopeSetup:
    def __init__(
        self,
        parent: ModelPackage,
        engine: Engine,
        microscope: str,
        *,
        store: LabelledStore | None = None,
        library_root: Path | None = None,
        per_class: int = PER_CLASS,
        teach_config: TeachConfig | None = None,
        offer: tuple[str, ...] = SUGGESTED[:1],
    ) -> None:
        """``engine``: cuts cells as the live view does; give it its own scale estimate
        (``Engine.derive(fresh_scale=True)``) so the live view's is left alone."""
        if parent.card.scope != "cell":
            raise InputError("setting up a microscope adapts cell models: choose a cell model")
        self.parent = parent
        self.engine = engine
        self.microscope = microscope
        self.store = store
        self.library_root = library_root
        self.per_class = per_class
        self.teach_config = teach_config or TeachConfig()
        self.crops: list[np.ndarray] = []
        self.crop_field: list[int] = []
        self.fields = 0
        self.calibrated: NewVersion | None = None
        self.suggestions: list[Suggestion] = []
        self.taught: NewVersion | None = None
        self.added: list[str] = []  # classes the lab adds (offered ones included)
        for name in offer:
            if name not in parent.card.classes:
                self.add_class(name)

    @property
    def classes(self) -> tuple[str, ...]:
        """The model's classes, then the ones the lab adds."""
        return self.parent.card.classes + tuple(self.added)

    def add_class(self, name: str) -> str:
        """Add a class by name (checked: ``adapt.classes``); returns its canonical name."""
        c = check_new_class(name, self.classes)
        if c not in self.classes:
            self.added.append(c)
        return c

    # -- 1. fields ------------------------------------------------------------------------
    def add_field(self, image: np.ndarray) -> int:
        """Cut the white cells of one field; returns how many."""
        crops = self.engine.crops(image)
        self.crops.extend(crops)
        self.crop_field.extend([self.fields] * len(crops))
        self.fields += 1
        return len(crops)

    @property
    def can_calibrate(self) -> bool:
        return len(self.crops) >= MIN_CELLS

    # -- 2. calibrate, then suggest ---------------------------------------------------------
    def calibrate(
        self, progress: Progress | None = None, cancel: threading.Event | None = None
    ) -> NewVersion:
        crops = np.stack(self.crops) if self.crops else np.zeros((0, 1, 1, 3), np.uint8)
        say = progress or (lambda _t, _s: None)
        self.calibrated = calibrate(
            self.parent,
            crops,
            n_images=self.fields,
            library_root=self.library_root,
            progress=lambda t, s: say(t, 0.8 * s),
            source_name=f"set-up: {self.microscope}",
            cancel=cancel,
        )
        say("the calibrated model suggests a class for each cell", 0.85)
        self.suggestions = self._suggest(load_package(self.calibrated.package), crops)
        say("done", 1.0)
        return self.calibrated

    def _suggest(self, pkg: ModelPackage, crops: np.ndarray) -> list[Suggestion]:
        clf = Classifier(pkg)
        known = clf.classes
        probs, feats = [], []
        for i in range(0, len(crops), 64):
            p, f = clf.predict_full(crops[i : i + 64])
            probs.append(p)
            if f is not None:
                feats.append(f.reshape(len(p), -1))
        p_all = np.concatenate(probs) if probs else np.zeros((0, len(known)))
        f_all = np.concatenate(feats) if feats and len(feats) == len(probs) else None
        out = [
            Suggestion(crop, self.crop_field[i], known[int(p.argmax())], float(p.max()))
            for i, (crop, p) in enumerate(zip(crops, p_all, strict=True))
        ]
        # grouped by suggested class (a technician confirms runs quickly); within a class
        # the typical cell of each kind it comes in first (``adapt.select``)
        return [out[i] for i in grid_order(p_all, f_all, self.per_class)]

    # -- 3. confirm or correct ----------------------------------------------------------------
    def label(self, index: int, label: str) -> None:
        if label != SKIP and label not in self.classes:
            raise InputError(f"{label!r} is not a class of this model: {', '.join(self.classes)}")
        self.suggestions[index].label = label

    def confirm(self, index: int) -> None:
        self.label(index, self.suggestions[index].predicted)

    def counts(self) -> dict[str, int]:
        """Labelled cells per class so far."""
        out = dict.fromkeys(self.classes, 0)
        for s in self.suggestions:
            if s.label in out:
                out[s.label] += 1
        return out

    def wanted(self) -> dict[str, int]:
        """Per class, how many more labels reach ``per_class`` (0 once reached)."""
        return {c: max(0, self.per_class - n) for c, n in self.counts().items()}

    def next_unlabelled(self, after: int = -1) -> int | None:
        for i in range(after + 1, len(self.suggestions)):
            if self.suggestions[i].label is None:
                return i
        return None

    @property
    def can_teach(self) -> bool:
        return self.calibrated is not None and sum(self.counts().values()) >= MIN_TRAIN_CELLS

    def too_few(self) -> dict[str, int]:
        """Added classes labelled, but too rarely to be taught (they are left out)."""
        counts = self.counts()
        return {c: counts[c] for c in self.added if 0 < counts[c] <= MIN_NEW_CLASS_CELLS}

    def labelled_set(self) -> LabelledSet:
        """This set-up's labels, split as the store splits: every fourth cell of a class,
        from the third on, is held back. An added class needs more than
        ``MIN_NEW_CLASS_CELLS`` labels to be taught; the classes are the model's, then the
        added ones that are."""
        counts = self.counts()
        taught = tuple(c for c in self.added if counts[c] > MIN_NEW_CLASS_CELLS)
        left_out = set(self.added) - set(taught)
        labels, splits, images = [], [], []
        seen: dict[str, int] = {}
        for s in self.suggestions:
            if s.label is None or s.label == SKIP or s.label in left_out:
                continue
            k = seen.get(s.label, 0)
            seen[s.label] = k + 1
            labels.append(s.label)
            splits.append(split_for(k))
            images.append(s.crop)
        size = self.parent.card.input_size
        return _as_set(labels, splits, images, self.parent.card.classes + taught, size)

    # -- 4. teach --------------------------------------------------------------------------------
    def teach(
        self, progress: Progress | None = None, cancel: threading.Event | None = None
    ) -> NewVersion:
        if self.calibrated is None:
            raise InputError("calibrate first: teaching starts from the calibrated model")
        self._keep_labels()
        cells = self.labelled_set()
        calibrated = load_package(self.calibrated.package)
        start, choice = self._starting_point(calibrated, cells)
        self.taught = teach(
            start,
            cells,
            config=self.teach_config,
            library_root=self.library_root,
            progress=progress,
            cancel=cancel,
            before_package=self.parent,
            appearance=calibrated.card.appearance,
            report={"started_from": choice, "too_few_to_teach": self.too_few()},
            pool=np.stack(self.crops) if self.crops else None,
        )
        return self.taught

    def _starting_point(
        self, calibrated: ModelPackage, cells: LabelledSet
    ) -> tuple[ModelPackage, dict[str, Any]]:
        """The calibrated model, unless the shipped one is right on more of the labelled
        cells (neither was trained on any of them; a tie keeps the calibrated one)."""
        x = np.concatenate([cells.train_images, cells.holdout_images])
        y = np.concatenate([cells.train_labels, cells.holdout_labels])
        card = self.parent.card
        threshold = card.unidentified_threshold if card.unidentified_threshold is not None else 0.5
        ks = cells.classes
        shipped = score_cells(Classifier(self.parent), x, y, threshold, ks) if len(y) else {}
        calib = score_cells(Classifier(calibrated), x, y, threshold, ks) if len(y) else {}
        use_shipped = bool(len(y)) and shipped["accuracy"] > calib["accuracy"]
        choice = {
            "model": "shipped" if use_shipped else "calibrated",
            "labelled_cells": len(y),
            "labelled_right_class": {
                "shipped": shipped.get("accuracy"),
                "calibrated": calib.get("accuracy"),
            },
        }
        return (self.parent if use_shipped else calibrated), choice

    def _keep_labels(self) -> None:
        if self.store is None:
            return
        run = self.calibrated.version if self.calibrated else ""
        for i, s in enumerate(self.suggestions):
            if s.label is None or s.label == SKIP:
                continue
            self.store.add(
                s.crop,
                s.label,
                source="confirmed" if s.label == s.predicted else "correction",
                predicted=s.predicted,
                slide=f"set-up of {self.microscope}",
                model=f"{self.parent.card.name} {self.parent.card.version}",
                key=f"setup:{self.microscope}:{run}#{i}",
            )

    def summary(self) -> dict[str, Any]:
        """Before and after on the held-back cells, as the teach report has them."""
        if self.taught is None:
            return {}
        r = self.taught.report
        return {
            "before": r["before"],
            "after": r["after"],
            "verdict": r["verdict"],
            "started_from": r["started_from"],
            "added_classes": r.get("added_classes", []),
            "pseudo": (r.get("pseudo_labels") or {}).get("kept", 0),
            "too_few": r.get("too_few_to_teach") or {},
            "package": str(self.taught.package),
        }
