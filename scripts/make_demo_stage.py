"""Build the demo's stage of real cells from PBC crops (CC BY 4.0), for the installed app.

    .venv/bin/python scripts/make_demo_stage.py --pbc ../shared/data/pbc --out build/demo_stage

The PBC images are never copied into the source tree: the installer's build runs this and
puts the result in the bundle's ``resources/demo``. Test-split crops of the default model
(never trained on) are laid on a torus in a grid, overlapping and blended, so the demo
camera can pan forever; only crops whose cell the default model, through the app's whole
path (locate, crop, classify) in the panned view, labels right and does not flag as unlike
its training images are kept. Prints the share of demo cells right and flagged over the
frames a demo session shows, the figures the README quotes.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from micro_app.core.engine import Engine, EngineParams
from micro_app.core.imageio import read_image_rgb
from micro_app.core.locate import background_colour
from micro_app.core.models import default_model_dir, load_package
from micro_app.core.results import UNIDENTIFIED
from micro_app.core.sources import smear
from micro_app.core.sources.demo import DemoSource, Stage
from micro_app.training.split import SPLIT_FILE, read_split

TILE = 256  # PBC crop side
STRIDE = 208  # tiles overlap by 48 px, blended
COLS, ROWS = 7, 5
KINDS = ("neutrophil", "eosinophil", "lymphocyte", "monocyte", "basophil", "ig", "erythroblast")
PX_PER_UM = 1 / 0.146  # PBC crops: 0.146 µm per pixel
BACKGROUND = np.array([240, 220, 195])  # PBC's usual slide background (RGB)
CREDIT = (
    "PBC dataset, Acevedo et al. 2020, Data in Brief 30:105474, Mendeley Data snkd93bnjr v1, "
    "CC BY 4.0"
)


def _window(n: int, ramp: int) -> np.ndarray:
    w = np.ones(n, np.float32)
    t = (np.arange(ramp, dtype=np.float32) + 0.5) / ramp
    w[:ramp], w[-ramp:] = t, t[::-1]
    return w


def compose(crops: list[np.ndarray]) -> np.ndarray:
    """Crops on a ``COLS`` x ``ROWS`` torus, overlapping edges blended."""
    h, w = ROWS * STRIDE, COLS * STRIDE
    acc = np.zeros((h, w, 3), np.float32)
    weight = np.zeros((h, w, 1), np.float32)
    win = np.outer(_window(TILE, TILE - STRIDE), _window(TILE, TILE - STRIDE))[..., None]
    for k, crop in enumerate(crops):
        y0, x0 = (k // COLS) * STRIDE, (k % COLS) * STRIDE
        ys = (np.arange(TILE) + y0) % h
        xs = (np.arange(TILE) + x0) % w
        acc[np.ix_(ys, xs)] += crop.astype(np.float32) * win
        weight[np.ix_(ys, xs)] += win
    return np.clip(acc / np.maximum(weight, 1e-6), 0, 255).astype(np.uint8)


def cells_of(kinds: list[str]) -> tuple[smear.PlacedCell, ...]:
    out = []
    for k, kind in enumerate(kinds):
        cy, cx = (k // COLS) * STRIDE + TILE // 2, (k % COLS) * STRIDE + TILE // 2
        r = 60  # the PBC cell fills about the middle half of its crop
        out.append(smear.PlacedCell(float(cx), float(cy), kind, (cx - r, cy - r, cx + r, cy + r)))
    return tuple(out)


def score(stage: Stage, engine: Engine, frames: int = 400) -> dict[str, object]:
    """Over ``frames`` of a demo session: each located cell matched to a stage cell."""
    src = DemoSource(rate=None, seed=0, stage=stage)
    src.open()
    right = flagged = located = 0
    per_cell: dict[int, Counter[str]] = {}
    try:
        for _ in range(frames):
            frame = src.read()
            assert frame is not None
            result = engine.process(frame.image)
            for cell in result.cells:
                hit = [
                    i
                    for i, (box, _kind) in enumerate(src.last_truth)
                    if box.contains(*cell.box.center)
                ]
                if not hit:
                    continue
                kind = src.last_truth[hit[0]][1]
                located += 1
                right += cell.label == kind
                flagged += cell.unlike_training
                key = _stage_index(stage, src, hit[0])
                per_cell.setdefault(key, Counter())[cell.label] += 1
    finally:
        src.close()
    return {
        "located": located,
        "right": right / located if located else 0.0,
        "flagged": flagged / located if located else 0.0,
        "per_cell": {k: dict(v) for k, v in per_cell.items()},
    }


def _stage_index(stage: Stage, src: DemoSource, i: int) -> int:
    box, _ = src.last_truth[i]
    ox, oy = src._pos  # the field's offset when it was read is close enough to find the tile
    cx = (box.center[0] + ox) % stage.image.shape[1]
    cy = (box.center[1] + oy) % stage.image.shape[0]
    return int(np.argmin([(c.x - cx) ** 2 + (c.y - cy) ** 2 for c in stage.cells]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pbc", type=Path, required=True)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    folder = args.model or default_model_dir()
    assert folder is not None
    pkg = load_package(folder, keras=False)
    engine = Engine(pkg, params=EngineParams(um_per_px=1 / PX_PER_UM))
    tests = [e for e in read_split(folder / SPLIT_FILE)["images"] if e["split"] == "test"]
    rng = np.random.default_rng(args.seed)
    pool: dict[str, list[np.ndarray]] = {k: [] for k in KINDS}
    for e in rng.permutation(np.array(tests, dtype=object)):
        kind = e["label"]
        if kind not in pool or len(pool[kind]) >= 12:
            continue
        crop = read_image_rgb(args.pbc / e["path"])
        if crop.shape[:2] != (TILE, TILE):
            crop = cv2.resize(crop, (TILE, TILE), interpolation=cv2.INTER_AREA)
        if np.abs(np.array(background_colour(crop)) - BACKGROUND).max() > 25:
            continue  # a slide area of another tint: its tile would stand out
        result = engine.process(crop)  # the cell alone, as the live view cuts it
        central = [c for c in result.cells if c.box.contains(TILE / 2, TILE / 2)]
        if (
            len(result.cells) == 1
            and central
            and central[0].label == kind
            and central[0].label != UNIDENTIFIED
            and not central[0].unlike_training
        ):
            pool[kind].append(crop)
    n = COLS * ROWS
    order = [k for _ in range(n) for k in KINDS if pool[k]][:n]
    order = [order[i] for i in rng.permutation(len(order))]  # classes mixed, as on a slide
    kinds, crops = [], []
    for k in order:
        if pool[k]:
            kinds.append(k)
            crops.append(pool[k].pop())
    stage = Stage(compose(crops), PX_PER_UM, cells_of(kinds), CREDIT)
    # replace the tiles the panned view gets wrong (a neighbour's edge, the blending); keep
    # the best stage seen
    best, best_r = stage, score(stage, engine)
    for _ in range(6):
        bad = {
            i
            for i, calls in best_r["per_cell"].items()  # type: ignore[union-attr]
            if calls.get(best.cells[i].kind, 0) < 0.9 * sum(calls.values())
        }
        print(
            f"right {best_r['right']:.3f}, flagged {best_r['flagged']:.3f} of "
            f"{best_r['located']} located; {len(bad)} tiles to replace"
        )
        swapped = 0
        for i in sorted(bad):
            if pool[kinds[i]]:  # two bad tiles of one kind may share its last spare crop
                crops[i] = pool[kinds[i]].pop()
                swapped += 1
        if not swapped:
            break
        stage = Stage(compose(crops), PX_PER_UM, cells_of(kinds), CREDIT)
        r = score(stage, engine)
        if float(r["right"]) >= float(best_r["right"]):  # type: ignore[arg-type]
            best, best_r = stage, r
    stage, r = best, best_r
    args.out.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out / "stage.png"), stage.image[..., ::-1])
    meta = {
        "px_per_um": PX_PER_UM,
        "credit": CREDIT,
        "model": f"{pkg.card.name} {pkg.card.version}",
        "cells": [{"x": c.x, "y": c.y, "kind": c.kind, "box": list(c.box)} for c in stage.cells],
        "measured": {k: r[k] for k in ("located", "right", "flagged")},
    }
    (args.out / "stage.json").write_text(json.dumps(meta, indent=1))
    print(
        f"stage {stage.image.shape[1]}x{stage.image.shape[0]} with {len(kinds)} cells "
        f"{dict(Counter(kinds))} -> {args.out}; over 400 demo frames the default model labels "
        f"{r['right']:.1%} of {r['located']} located cells right and flags {r['flagged']:.1%}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
