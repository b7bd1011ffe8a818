"""Frame -> located cells -> one batched model call -> a ``FrameResult``.

``Engine.process`` is synchronous and usable from the CLI and tests; the live run calls it
on its inference thread (``micro_app.core.inference``).
"""

from __future__ import annotations

import copy
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

import cv2
import numpy as np

from micro_app.core.appearance import Appearance, features_batch
from micro_app.core.confine import inside
from micro_app.core.errors import MicroAppError
from micro_app.core.geometry import Box
from micro_app.core.locate import (
    Cell,
    LocateParams,
    LocateResult,
    extract_crops,
    locate_cells,
)
from micro_app.core.models.classifier import Classifier
from micro_app.core.models.package import ModelPackage
from micro_app.core.openset import OpenSetStats
from micro_app.core.preprocess import PreprocessParams
from micro_app.core.results import (
    ATYPICAL,
    UNCLASSIFIED,
    CellResult,
    FieldResult,
    FrameResult,
    label_from_probs,
)
from micro_app.core.scale import estimate_um_per_px

log = logging.getLogger("micro_app")
DEFAULT_THRESHOLD = 0.5
RESCALE_AFTER = 8  # scale estimates before the smoothed scale is re-measured every 5th frame


@dataclass(frozen=True)
class EngineParams:
    """``threshold``: below this top-class probability a cell is ``unidentified``;
    ``None`` takes the model card's value, else 0.5."""

    threshold: float | None = None
    um_per_px: float | None = None  # calibrated scale; None estimates it per frame

    def __post_init__(self) -> None:
        from micro_app.core.errors import SettingsError

        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise SettingsError(f"confidence threshold must be 0..1, got {self.threshold}")
        if self.um_per_px is not None and not 0.0 < self.um_per_px < 100.0:
            raise SettingsError(f"µm per pixel must be a positive scale, got {self.um_per_px}")


class Engine:
    def __init__(
        self,
        package: ModelPackage | None = None,
        preprocess: PreprocessParams | None = None,
        locate: LocateParams | None = None,
        params: EngineParams | None = None,
        *,
        smooth_scale: bool = False,
        backend: str = "auto",
        on_message: Callable[[str], None] | None = None,
    ) -> None:
        """``smooth_scale``: for a live stream of one slide, use the median of the recent
        red-cell scale estimates instead of each frame's own (which jitters by ~10%).
        ``backend``: where the model runs (``runtime.BACKENDS``); ``on_message``: hears a
        device that failed and the one that took over."""
        self.preprocess = preprocess or PreprocessParams()
        self.locate = locate or LocateParams()
        self.params = params or EngineParams()
        self.classifier = Classifier(package, backend, on_message) if package is not None else None
        self._scales: deque[float] | None = deque(maxlen=31) if smooth_scale else None
        self._frames_seen = 0
        card = package.card if package is not None else None
        self._appearance = (
            Appearance.from_dict(card.appearance) if card and card.appearance else None
        )
        self._open_set = _open_set(package) if self.classifier is not None else None

    def derive(
        self,
        *,
        preprocess: PreprocessParams | None = None,
        locate: LocateParams | None = None,
        params: EngineParams | None = None,
        fresh_scale: bool = False,
    ) -> Engine:
        """A copy with other parameters that shares the loaded model (no reload, no retrace).
        ``fresh_scale``: the copy estimates each image's scale on its own, leaving this
        engine's running median alone (fields from another microscope, a folder)."""
        new = copy.copy(self)
        new.preprocess = preprocess or self.preprocess
        new.locate = locate or self.locate
        new.params = params or self.params
        if fresh_scale:
            new._scales = None
        elif self._scales is not None:
            keep = new.params.um_per_px == self.params.um_per_px
            new._scales = deque(self._scales if keep else (), maxlen=self._scales.maxlen)
        return new

    @property
    def device(self) -> str:
        return self.classifier.device if self.classifier else "none"

    @property
    def threshold(self) -> float:
        if self.params.threshold is not None:
            return self.params.threshold
        if self.classifier and self.classifier.card.unidentified_threshold is not None:
            return self.classifier.card.unidentified_threshold
        return DEFAULT_THRESHOLD

    def process(
        self,
        image: np.ndarray,
        seq: int = 0,
        timestamp: float | None = None,
        *,
        still: bool = False,
    ) -> FrameResult:
        """``still``: the frame is a still field (an image of a folder), so its scale is its
        own, as ``micro-app classify`` measures it, and it leaves the running median alone:
        a folder replayed live gives each image the result it gets in ``classify``."""
        t0 = time.perf_counter()
        loc = self._locate(image, still)
        cells: list[CellResult] = []
        field_result = None
        clf = self.classifier
        unlike_share = None
        crops = None
        if clf is not None and clf.card.scope == "cell":
            crops = self._model_crops(image, loc)
            probs, feats = clf.predict_full(crops)
            scores = self._appearance_scores(crops)
            far = None
            if self._open_set is not None and feats is not None:
                far = self._open_set.scores(feats)
            for i, (cell, p) in enumerate(zip(loc.cells, probs, strict=True)):
                label, conf, dist = label_from_probs(p, clf.classes, self.threshold)
                score = None if scores is None else float(scores[i])
                res = _cell_result(cell, label, conf, dist, score, self._is_unlike(score))
                if far is not None and self._open_set is not None:
                    # a cell unlike the training images is far from every class because of
                    # the camera and stain: it is provisional, and the check stays silent
                    # until the model is set up for this microscope (``adapt``); a cell cut
                    # by the frame's edge fits no class because half of it is missing: it
                    # is judged once it is in view (on the demo stage at its own scale the
                    # check flagged 54 % of cut cells and none of the 1,520 whole ones)
                    odd = (
                        bool(far[i] > self._open_set.threshold)
                        and not res.unlike_training
                        and not cell.touches_border
                    )
                    res = replace(
                        res,
                        open_set_score=float(far[i]),
                        atypical=odd,
                        label=ATYPICAL if odd else res.label,
                    )
                cells.append(res)
            if scores is not None and len(scores):
                unlike_share = float(np.mean([c.unlike_training for c in cells]))
        else:
            cells = [_cell_result(c, UNCLASSIFIED, 0.0, {}) for c in loc.cells]
            if clf is not None:  # a field model judges the whole frame
                h, w = clf.card.input_size
                small = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
                p = clf.predict(small[None])[0]
                field_result = FieldResult(*label_from_probs(p, clf.classes, self.threshold))
                scores = self._appearance_scores(small[None])
                if scores is not None:
                    unlike_share = float(self._is_unlike(float(scores[0])))
        return FrameResult(
            frame_seq=seq,
            timestamp=time.monotonic() if timestamp is None else timestamp,
            image_size=(int(image.shape[0]), int(image.shape[1])),
            cells=tuple(cells),
            um_per_px=loc.um_per_px,
            scale_source=loc.scale_source,
            latency_ms=(time.perf_counter() - t0) * 1000.0,
            model=clf.card.summary() if clf else None,
            field_result=field_result,
            threshold=self.threshold if clf else 0.0,
            device=self.device,
            mask=loc.mask,
            unlike_share=unlike_share,
            crops=crops,
        )

    def crops(self, image: np.ndarray) -> np.ndarray:
        """The located cells of ``image`` cut and resized exactly as the model sees them
        (before its preprocessing): uint8 ``(N, h, w, 3)``. For statistics and adaptation."""
        if self.classifier is None or self.classifier.card.scope != "cell":
            raise ValueError("crops need a cell model: its card sets the crop size")
        return self._model_crops(image, self._locate(image))

    def _model_crops(self, image: np.ndarray, loc: LocateResult) -> np.ndarray:
        assert self.classifier is not None
        size = self.classifier.card.input_size[0]
        return extract_crops(image, self._crop_cells(loc.cells, loc.um_per_px), size)

    def _appearance_scores(self, images: np.ndarray) -> np.ndarray | None:
        if self._appearance is None:
            return None
        return self._appearance.scores(features_batch(images))

    def _is_unlike(self, score: float | None) -> bool:
        return (
            score is not None
            and self._appearance is not None
            and (self._appearance.is_unlike(score))
        )

    def _locate(self, image: np.ndarray, still: bool = False) -> LocateResult:
        calibrated = self.params.um_per_px
        fixed = calibrated is not None or still or not self.locate.estimate_scale
        if fixed or self._scales is None:  # a still field: its own scale, the median untouched
            return locate_cells(image, self.preprocess, self.locate, calibrated)
        # the scale of one slide changes slowly: once the median has enough estimates, every
        # fifth frame adds one (measuring it is a sixth of a busy frame's cost)
        self._frames_seen += 1
        est = (
            estimate_um_per_px(image)
            if len(self._scales) < RESCALE_AFTER or self._frames_seen % 5 == 0
            else None
        )
        if est is not None:
            self._scales.append(est)
        if not self._scales:  # this frame's estimate failed: not tried a second time
            no_estimate = replace(self.locate, estimate_scale=False)
            return locate_cells(image, self.preprocess, no_estimate, None)
        loc = locate_cells(image, self.preprocess, self.locate, float(np.median(self._scales)))
        return replace(loc, scale_source="estimated")

    def _crop_cells(self, cells: list[Cell], um_per_px: float) -> list[Cell]:
        """Re-frame crops to the card's crop size in µm, so the model sees its training scale."""
        assert self.classifier is not None
        size_um = self.classifier.card.crop.size_um
        if size_um is None:
            return cells
        side = max(8, round(size_um / um_per_px))
        out = []
        for c in cells:
            cx, cy = c.center
            x0, y0 = round(cx - side / 2), round(cy - side / 2)
            out.append(replace(c, box=Box(x0, y0, x0 + side, y0 + side)))
        return out


def _open_set(package: ModelPackage | None) -> OpenSetStats | None:
    """The package's open-set check, if it has one (a bad file: one line in the log, the
    check off; the rest of the model still works)."""
    if package is None:
        return None
    entry = package.card.extra.get("open_set")
    if not isinstance(entry, dict):
        return None
    try:
        path = inside(package.path, entry.get("file"), "the card's open-set check")
        return OpenSetStats.load(path, entry.get("sha256"))
    except MicroAppError as exc:
        log.warning("the open-set check of %s is off: %s", package.card.name, exc)
        return None


def _cell_result(
    cell: Cell,
    label: str,
    conf: float,
    dist: dict[str, float],
    score: float | None = None,
    unlike: bool = False,
) -> CellResult:
    return CellResult(
        box=cell.box,
        nucleus_box=cell.nucleus_box,
        label=label,
        confidence=conf,
        probabilities=dist,
        touches_border=cell.touches_border,
        appearance_score=score,
        unlike_training=unlike,
    )
