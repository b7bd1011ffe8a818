"""A package's 8-bit live model against its FP32 ONNX weights, on real cells:

    .venv/bin/python benchmarks/bench_int8.py [--model DIR ...] [--json OUT]

For each package (default: the shipped model), both backends, the same cells:
- PBC test split (the package's ``split.json``, 200 per class; no patient identifiers,
  so in-domain scores are optimistic): accuracy, macro F1, expected calibration error
  (15 bins), and the share of cells the open-set check calls atypical;
- BCCD test half (``benchmarks/bccd_split.json``; another lab, never trained on): right
  class of the typed white cell, located and cut from its field by the app (threshold
  applied, ``unidentified`` counts as wrong) and its top class;
- top-class agreement of the two backends on the PBC cells.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.core.engine import Engine, _open_set
from micro_app.core.field_eval import load_typed_fields, score_fields
from micro_app.core.models import default_model_dir, load_package
from micro_app.core.models.classifier import Classifier
from micro_app.training.dataset import read_samples
from micro_app.training.metrics import classification_report
from micro_app.training.split import SPLIT_FILE, read_split

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
HALVES = ROOT / "benchmarks" / "bccd_split.json"
BACKENDS = ("onnx", "onnx_int8")


def pbc_test(model: Path) -> tuple[np.ndarray, np.ndarray]:
    pkg = load_package(model, keras=False)
    split = read_split(model / SPLIT_FILE)
    items = [(e["path"], e["label"]) for e in split["images"] if e["split"] == "test"]
    _, images = read_samples(Path(split["dataset"]), items, pkg.card.input_size)
    assert images is not None
    return images, np.array([pkg.card.classes.index(label) for _, label in items])


def one(model: Path, backend: str, images: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    pkg = load_package(model, keras=False)
    clf = Classifier(pkg, backend)
    probs, feats = [], []
    for i in range(0, len(images), 64):
        p, f = clf.predict_full(images[i : i + 64])
        probs.append(p)
        if f is not None:
            feats.append(f)
    prob = np.concatenate(probs)
    t = pkg.card.unidentified_threshold or 0.5
    rep = classification_report(y, prob, pkg.card.classes, t)
    out: dict[str, Any] = {
        "device": clf.device,
        "pbc_cells": len(y),
        "pbc_accuracy": rep["accuracy"],
        "pbc_macro_f1": rep["macro_f1"],
        "pbc_ece": rep["ece"],
    }
    open_set = _open_set(pkg)
    if open_set is not None and feats:
        far = open_set.scores(np.concatenate(feats))
        out["pbc_atypical"] = float(np.mean(far > open_set.threshold))
    if (DATA / "bccd").is_dir():
        keep = set(json.loads(HALVES.read_text())["test"])
        fields = [f for f in load_typed_fields(DATA / "bccd") if f.image.name in keep]
        d = score_fields(Engine(pkg, backend=backend), fields).to_dict()
        out.update(
            bccd_test_fields=d["fields"],
            bccd_right_class=d["accuracy"],
            bccd_top_class=d["top_class_accuracy"],
        )
    out["_probs"] = prob
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", type=Path, nargs="+", default=None)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if not (DATA / "pbc").is_dir():
        raise SystemExit(f"skipped: {DATA / 'pbc'} is absent (the PBC test split is needed)")
    report = []
    for model in args.model or [default_model_dir()]:
        assert model is not None
        images, y = pbc_test(model)
        rows = {b: one(model, b, images, y) for b in BACKENDS}
        a, b = (rows[k].pop("_probs") for k in BACKENDS)
        agree = float(np.mean(a.argmax(1) == b.argmax(1)))
        report.append({"model": str(model), "agreement_on_pbc": agree, **rows})
        print(f"{model}: same top class on {agree:.4f} of {len(y)} PBC test cells")
        for k, r in rows.items():
            extra = (
                f"; BCCD test half ({r['bccd_test_fields']} fields): right class "
                f"{r['bccd_right_class']:.3f}, top class {r['bccd_top_class']:.3f}"
                if "bccd_right_class" in r
                else ""
            )
            print(
                f"  {k:9s} PBC accuracy {r['pbc_accuracy']:.4f}, macro F1 {r['pbc_macro_f1']:.4f}, "
                f"ECE {r['pbc_ece']:.4f}, atypical {r.get('pbc_atypical', float('nan')):.3f}{extra}"
            )
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
