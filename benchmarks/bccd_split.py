"""A fixed split of BCCD's typed fields: one part may train a model (several labs in one
training set), the other part is the only one any BCCD score is reported on.

    .venv/bin/python benchmarks/bccd_split.py              # writes benchmarks/bccd_split.json
    .venv/bin/python benchmarks/bccd_split.py --crops DIR  # the training part's typed cells
                                                           # as DIR/<class>/<field>.png

The rule, by file name so that anyone can re-derive it: fields whose images are near copies
(difference hash within 10 bits) form one group; within each white-cell type the groups are
ordered by the sha256 of their first file name and every other group (the first, third, ...)
goes to training. BCCD has no patient or slide identifiers: neighbouring fields of one slide
can still fall on both sides, so a BCCD score is optimistic in the same way PBC's are, only
less. The crops are cut as the app cuts a live cell: located in the field with the red-cell
scale, a 37.4 µm square around it (the PBC crops' side), 256 pixels, padded with the slide's
background colour at the border.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from micro_app.core.atomic import atomic_write_json
from micro_app.core.field_eval import TypedField, load_typed_fields
from micro_app.core.geometry import Box
from micro_app.core.imageio import read_image_rgb
from micro_app.core.locate import LocateParams, extract_crops, locate_cells
from micro_app.core.preprocess import PreprocessParams
from micro_app.training.dataset import dhash128, near_pairs

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SPLIT = Path(__file__).resolve().with_name("bccd_split.json")
CROP_UM = 37.4
CROP_PX = 256


def _groups(fields: list[TypedField]) -> list[int]:
    hashes = [dhash128(read_image_rgb(f.image)) for f in fields]
    parent = list(range(len(fields)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in near_pairs(hashes):
        a, b = find(int(i)), find(int(j))
        parent[max(a, b)] = min(a, b)
    return [find(i) for i in range(len(fields))]


def make_split(bccd: Path) -> dict[str, object]:
    fields = load_typed_fields(bccd)
    groups = _groups(fields)
    by_type: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for f, g in zip(fields, groups, strict=True):
        by_type[f.wbc_type][g].append(f.image.name)
    train: list[str] = []
    test: list[str] = []
    for kind in sorted(by_type):
        ordered = sorted(
            by_type[kind].values(), key=lambda names: hashlib.sha256(names[0].encode()).hexdigest()
        )
        for k, names in enumerate(ordered):
            (train if k % 2 == 0 else test).extend(names)
    counts = {
        side: {
            k: sum(1 for f in fields if f.image.name in names and f.wbc_type == k)
            for k in sorted(by_type)
        }
        for side, names in (("train", set(train)), ("test", set(test)))
    }
    return {
        "rule": "near-copy groups per type, ordered by sha256 of the first file name; "
        "every other group trains",
        "near_copy_groups": len(set(groups)),
        "counts": counts,
        "train": sorted(train),
        "test": sorted(test),
    }


def read_split(path: Path = SPLIT) -> dict[str, list[str]]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {"train": list(data["train"]), "test": list(data["test"])}


def typed_cell_crop(f: TypedField) -> np.ndarray | None:
    """The typed cell of a field cut as the app cuts it (None when it is not located)."""
    img = read_image_rgb(f.image)
    loc = locate_cells(img, PreprocessParams(), LocateParams(), None)
    hits = [c for c in loc.cells if f.box.contains(*c.nucleus_box.center)]
    if not hits:
        return None
    cell = max(hits, key=lambda c: c.box.iou(f.box))
    side = max(8, round(CROP_UM / loc.um_per_px))
    cx, cy = cell.center
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    square = replace(cell, box=Box(x0, y0, x0 + side, y0 + side))
    return extract_crops(img, [square], CROP_PX)[0]


def write_crops(bccd: Path, names: list[str], out: Path) -> dict[str, int]:
    wanted = set(names)
    counts: dict[str, int] = defaultdict(int)
    for f in load_typed_fields(bccd):
        if f.image.name not in wanted:
            continue
        crop = typed_cell_crop(f)
        if crop is None:
            continue
        path = out / f.wbc_type / f"{f.image.stem}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), crop[..., ::-1])
        counts[f.wbc_type] += 1
    atomic_write_json(
        out / "dataset.json",
        {
            "name": "BCCD typed white cells, training part of benchmarks/bccd_split.json",
            "licence": "MIT (BCCD dataset, github.com/Shenggan/BCCD_Dataset)",
            "citation": "BCCD Dataset, Shenggan (2017); white-cell types from its wbc_types.csv",
        },
    )
    return dict(counts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bccd", type=Path, default=DATA / "bccd")
    ap.add_argument("--crops", type=Path, help="write the training part's typed cells here")
    args = ap.parse_args()
    if args.crops is None:
        split = make_split(args.bccd)
        atomic_write_json(SPLIT, split)
        print(f"{SPLIT}: {split['counts']}")
        return 0
    if args.crops.resolve().is_relative_to(Path(__file__).resolve().parents[1]):
        raise SystemExit("write the crops outside the repository: BCCD images are not committed")
    counts = write_crops(args.bccd, read_split()["train"], args.crops)
    print(f"{args.crops}: {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
