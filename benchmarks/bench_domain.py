"""Another lab's images: does the model hold up, and does it know when it should not?

    .venv/bin/python benchmarks/bench_domain.py --model models/<package> [--json]

1. BCCD (another lab, stain and camera; MIT): locate, crop and classify the fields whose
   white cell is typed; share of fields whose located cell gets the right class, beside
   the always-neutrophil baseline.
2. The "unlike the training data" check: appearance scores of every located BCCD cell
   against the package's held-out PBC test crops (from its ``split.json``): ROC AUC and
   the share of each flagged at the card's threshold.
In-domain (PBC) images have no patient identifiers: a random split is optimistic.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.core.appearance import Appearance, features_batch
from micro_app.core.engine import Engine, EngineParams
from micro_app.core.field_eval import load_typed_fields, score_fields
from micro_app.core.imageio import list_images, read_image_rgb
from micro_app.core.models import default_model_dir, load_package
from micro_app.core.models.gradcam import resize_to_input
from micro_app.training.metrics import roc_auc
from micro_app.training.split import SPLIT_FILE, read_split

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def held_out_crops(pkg_dir: Path, pbc: Path, size: tuple[int, int], limit: int) -> np.ndarray:
    entries = [e for e in read_split(pkg_dir / SPLIT_FILE)["images"] if e["split"] == "test"]
    rng = np.random.default_rng(0)
    pick = rng.permutation(len(entries))[:limit]
    return np.stack([resize_to_input(read_image_rgb(pbc / entries[i]["path"]), size) for i in pick])


def run(model: Path, bccd: Path, pbc: Path, limit: int = 1000) -> dict[str, Any]:
    pkg = load_package(model)
    engine = Engine(pkg, params=EngineParams())
    out: dict[str, Any] = {
        "model": pkg.card.summary(),
        "bccd_fields": score_fields(engine, load_typed_fields(bccd)).to_dict(),
    }
    if pkg.card.appearance is None:
        return out
    stats = Appearance.from_dict(pkg.card.appearance)
    other = np.concatenate([engine.crops(read_image_rgb(p)) for p in list_images(bccd / "images")])
    own = held_out_crops(model, pbc, pkg.card.input_size, limit)
    s_other, s_own = stats.scores(features_batch(other)), stats.scores(features_batch(own))
    scores = np.concatenate([s_other, s_own])
    is_other = np.concatenate([np.ones(len(s_other), bool), np.zeros(len(s_own), bool)])
    out["unlike_check"] = {
        "bccd_cells": len(s_other),
        "pbc_test_crops": len(s_own),
        "roc_auc": roc_auc(scores, is_other),
        "threshold": stats.threshold,
        "bccd_flagged": float(np.mean(s_other > stats.threshold)),
        "pbc_flagged": float(np.mean(s_own > stats.threshold)),
        "bccd_median_score": float(np.median(s_other)),
        "pbc_median_score": float(np.median(s_own)),
    }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--bccd", type=Path, default=DATA / "bccd")
    ap.add_argument("--pbc", type=Path, default=DATA / "pbc")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    folder = args.model or default_model_dir()
    if folder is None:
        raise SystemExit("no model: pass --model DIR")
    r = run(folder, args.bccd, args.pbc)
    if args.json:
        print(json.dumps(r))
        return 0
    f = r["bccd_fields"]
    print(f"model {folder}")
    print(
        f"BCCD typed fields {f['fields']} {f['types']}: located {f['located']}, right class "
        f"{f['accuracy']:.3f} (top class {f['top_class_accuracy']:.3f}, {f['unidentified']} "
        f"unidentified); always neutrophil {f['always_neutrophil']:.3f}"
    )
    for t, row in f["confusion"].items():
        print(f"  {t:>11}: {row}")
    u = r.get("unlike_check")
    if u:
        print(
            f"unlike-training check: ROC AUC {u['roc_auc']:.3f} (BCCD cells {u['bccd_cells']} vs "
            f"PBC test crops {u['pbc_test_crops']}); flagged at {u['threshold']:.2f}: BCCD "
            f"{u['bccd_flagged']:.1%}, PBC {u['pbc_flagged']:.1%}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
