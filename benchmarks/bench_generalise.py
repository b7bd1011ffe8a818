"""Compare model packages in-domain and on another lab, on one fixed split, through the
app's own path:

    .venv/bin/python benchmarks/bench_generalise.py --model models/lite0_pbc_bccd --model /tmp/a ...

- PBC (in-domain): the package's stored test split (``micro-app evaluate``), accuracy,
  macro F1 and expected calibration error (ECE). No patient identifiers: optimistic.
- BCCD (another lab, camera and stain): only the *test* part of
  ``benchmarks/bccd_split.json`` (the other part may have trained a model). Each typed
  field is located, cut and classified as in the live view; the typed cell gets the right
  class (after the ``unidentified`` threshold), the right top class, the class-averaged
  right share, and the ECE of its top-class confidence. Always answering "neutrophil" is
  the baseline to beat.
- Speed: cells per second through ``Classifier.predict`` (the card's preprocessing plus
  one model call) at batch 16 and 32 on this machine, for each backend the package has.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.core.engine import Engine, EngineParams
from micro_app.core.field_eval import load_typed_fields, matched_cell
from micro_app.core.imageio import read_image_rgb
from micro_app.core.models import load_package
from micro_app.core.models.classifier import Classifier
from micro_app.core.results import UNIDENTIFIED
from micro_app.training.evaluate import evaluate
from micro_app.training.metrics import expected_calibration_error

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SPLIT = Path(__file__).resolve().with_name("bccd_split.json")


def bccd_scores(model: Path, bccd: Path, part: str = "test") -> dict[str, Any]:
    names = set(json.loads(SPLIT.read_text())[part])
    fields = [f for f in load_typed_fields(bccd) if f.image.name in names]
    pkg = load_package(model)
    engine = Engine(pkg, params=EngineParams())
    classes = pkg.card.classes
    right = top = unidentified = located = provisional = atypical = 0
    per_type: dict[str, list[bool]] = {}
    confusion: dict[str, Counter[str]] = {}
    probs, truth = [], []
    for f in fields:
        result = engine.process(read_image_rgb(f.image))
        i = matched_cell(result, f)
        row = confusion.setdefault(f.wbc_type, Counter())
        if i is None:
            row["(not located)"] += 1
            per_type.setdefault(f.wbc_type, []).append(False)
            continue
        cell = result.cells[i]
        located += 1
        row[cell.label] += 1
        right += cell.label == f.wbc_type
        top += cell.predicted == f.wbc_type
        unidentified += cell.label == UNIDENTIFIED
        provisional += cell.provisional
        atypical += cell.atypical
        per_type.setdefault(f.wbc_type, []).append(cell.label == f.wbc_type)
        if f.wbc_type in classes:
            probs.append([cell.probabilities.get(c, 0.0) for c in classes])
            truth.append(classes.index(f.wbc_type))
    n = len(fields)
    ece = expected_calibration_error(np.array(probs), np.array(truth)) if probs else None
    return {
        "fields": n,
        "located": located,
        "right_class": right / n,
        "top_class": top / n,
        "class_averaged": float(np.mean([np.mean(v) for v in per_type.values()])),
        "unidentified": unidentified,
        "provisional": provisional,
        "atypical": atypical,
        "ece": ece,
        "always_neutrophil": sum(f.wbc_type == "neutrophil" for f in fields) / n,
        "types": dict(Counter(f.wbc_type for f in fields)),
        "confusion": {k: dict(v) for k, v in confusion.items()},
    }


def speed(model: Path) -> dict[str, float]:
    pkg = load_package(model)
    h, w = pkg.card.input_size
    rng = np.random.default_rng(0)
    out = {}
    backends = ["keras"] + [b for b in ("onnx",) if b in pkg.card.weights]
    for backend in backends:
        clf = Classifier(pkg, backend=backend)
        for batch in (16, 32):
            x = rng.integers(0, 256, (batch, h, w, 3), dtype=np.uint8)
            clf.predict(x)
            t0, n = time.perf_counter(), 0
            while time.perf_counter() - t0 < 4.0:
                clf.predict(x)
                n += batch
            out[f"{backend}_batch{batch}"] = n / (time.perf_counter() - t0)
    return out


PARTS = ("pbc", "bccd", "speed")


def run(model: Path, pbc: Path, bccd: Path, parts: tuple[str, ...] = PARTS) -> dict[str, Any]:
    out: dict[str, Any] = {"model": str(model)}
    if "pbc" in parts:
        report = evaluate(model, pbc)
        out["pbc_test"] = {
            "images": report["n_images"],
            "accuracy": report["accuracy"],
            "macro_f1": report["macro_f1"],
            "ece": report["ece"],
        }
    if "bccd" in parts:
        out["bccd_test"] = bccd_scores(model, bccd)
    if "speed" in parts:
        out["cells_per_s"] = speed(model)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", type=Path, action="append", required=True)
    ap.add_argument("--pbc", type=Path, default=DATA / "pbc")
    ap.add_argument("--bccd", type=Path, default=DATA / "bccd")
    ap.add_argument("--json", type=Path, help="append one JSON line per model to this file")
    ap.add_argument(
        "--parts",
        default=",".join(PARTS),
        help="which measurements, comma-separated: pbc, bccd, speed (all); measure speed "
        "alone on an otherwise idle machine",
    )
    args = ap.parse_args()
    parts = tuple(p.strip() for p in args.parts.split(",") if p.strip())
    if not parts or set(parts) - set(PARTS):
        raise SystemExit(f"--parts takes some of {', '.join(PARTS)}, got {args.parts!r}")
    for model in args.model:
        r = run(model, args.pbc, args.bccd, parts)
        if args.json:
            with open(args.json, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(r) + "\n")
        print(f"{model}")
        if "pbc_test" in r:
            p = r["pbc_test"]
            print(
                f"  PBC test ({p['images']}): accuracy {p['accuracy']:.3f}, macro F1 "
                f"{p['macro_f1']:.3f}, ECE {p['ece']:.3f}"
            )
        if "bccd_test" in r:
            b = r["bccd_test"]
            ece = b["ece"] if b["ece"] is None else round(b["ece"], 3)
            print(
                f"  BCCD test ({b['fields']} typed fields {b['types']}): right class "
                f"{b['right_class']:.3f}, top class {b['top_class']:.3f}, class-averaged "
                f"{b['class_averaged']:.3f}, ECE {ece}, provisional {b['provisional']}, "
                f"atypical {b['atypical']}; always neutrophil {b['always_neutrophil']:.3f}"
            )
            for t, row in b["confusion"].items():
                print(f"    {t:>11}: {row}")
        if "cells_per_s" in r:
            print("  cells/s: " + ", ".join(f"{k} {v:.0f}" for k, v in r["cells_per_s"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
