"""Scoring located cells against Pascal VOC boxes (the BCCD annotations).

Matching rule (one rule, used by the benchmark and the tests): a ground-truth box is
*found* when the centre of a located cell lies inside it. Matching is one-to-one: each
located cell is given to at most one ground-truth box, the one whose centre is nearest,
and each ground-truth box takes at most one cell; located cells left over are false
positives. The rule judges *where* a cell was found, not the size of its crop box, which
is a model-input choice (the crop is several cell diameters wide on purpose).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from micro_app.core.geometry import Box


@dataclass(frozen=True)
class Annotation:
    """One annotated image: its file name, size and the boxes of each class label."""

    filename: str
    width: int
    height: int
    objects: tuple[tuple[str, Box], ...] = field(default=())

    def boxes(self, label: str) -> list[Box]:
        return [box for name, box in self.objects if name == label]


def parse_voc(path: Path) -> Annotation:
    """Read one Pascal VOC XML file. VOC corners are inclusive 1-based pixels; the boxes
    are returned half-open (``x1 = xmax``) and clipped to the image."""
    root = ET.parse(path).getroot()
    size = root.find("size")
    width = int(_text(size, "width")) if size is not None else 0
    height = int(_text(size, "height")) if size is not None else 0
    objects = []
    for obj in root.iter("object"):
        bnd = obj.find("bndbox")
        if bnd is None:
            continue
        x0, y0, x1, y1 = (round(float(_text(bnd, k))) for k in ("xmin", "ymin", "xmax", "ymax"))
        x0, y0 = max(0, x0 - 1), max(0, y0 - 1)
        if width and height:
            x1, y1 = min(width, x1), min(height, y1)
        if x1 > x0 and y1 > y0:
            objects.append((_text(obj, "name").strip(), Box(x0, y0, x1, y1)))
    return Annotation(_text(root, "filename"), width, height, tuple(objects))


def _text(node: ET.Element | None, tag: str) -> str:
    child = node.find(tag) if node is not None else None
    if child is None or child.text is None:
        raise ValueError(f"VOC annotation lacks <{tag}>")
    return child.text


def load_voc_dir(root: Path) -> list[tuple[Path, Annotation]]:
    """``root/annotations/*.xml`` paired with ``root/images/<filename>``, sorted by name."""
    pairs = []
    for xml in sorted((root / "annotations").glob("*.xml")):
        ann = parse_voc(xml)
        image = root / "images" / ann.filename
        if not image.is_file():
            image = root / "images" / (xml.stem + ".jpg")
        pairs.append((image, ann))
    return pairs


@dataclass(frozen=True)
class MatchResult:
    """Counts of one image: ``matches`` pairs (truth index, detection index)."""

    n_truth: int
    n_found: int
    matches: tuple[tuple[int, int], ...]

    @property
    def true_positives(self) -> int:
        return len(self.matches)

    @property
    def false_positives(self) -> int:
        return self.n_found - len(self.matches)

    @property
    def missed(self) -> int:
        return self.n_truth - len(self.matches)


def match_centres(truths: Sequence[Box], centres: Sequence[tuple[float, float]]) -> MatchResult:
    """One-to-one matching by the centre-inside rule (see the module docstring).

    Candidate pairs (centre inside the box) are taken greedily, nearest to the box centre
    first."""
    pairs = []
    for ti, box in enumerate(truths):
        bx, by = box.center
        for di, (x, y) in enumerate(centres):
            if box.contains(x, y):
                pairs.append((math.hypot(x - bx, y - by), ti, di))
    used_t: set[int] = set()
    used_d: set[int] = set()
    matches = []
    for _, ti, di in sorted(pairs):
        if ti not in used_t and di not in used_d:
            used_t.add(ti)
            used_d.add(di)
            matches.append((ti, di))
    return MatchResult(len(truths), len(centres), tuple(sorted(matches)))


@dataclass(frozen=True)
class Summary:
    images: int
    truths: int
    true_positives: int
    false_positives: int

    @property
    def recall(self) -> float:
        return self.true_positives / self.truths if self.truths else 1.0

    @property
    def fp_per_image(self) -> float:
        return self.false_positives / self.images if self.images else 0.0


def summarise(results: Iterable[MatchResult]) -> Summary:
    rs = list(results)
    return Summary(
        images=len(rs),
        truths=sum(r.n_truth for r in rs),
        true_positives=sum(r.true_positives for r in rs),
        false_positives=sum(r.false_positives for r in rs),
    )


def median_box_size(boxes: Iterable[Box], width: int, height: int) -> float | None:
    """Median of (w + h) / 2 over boxes that do not touch the image border (cut-off cells
    would bias the size down); ``None`` when there are none."""
    sizes = sorted(
        (b.width + b.height) / 2.0
        for b in boxes
        if b.x0 > 1 and b.y0 > 1 and b.x1 < width - 1 and b.y1 < height - 1
    )
    if not sizes:
        return None
    mid = len(sizes) // 2
    return sizes[mid] if len(sizes) % 2 else (sizes[mid - 1] + sizes[mid]) / 2.0
