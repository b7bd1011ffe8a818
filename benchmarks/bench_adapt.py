"""Adapting a model to another lab's microscope ("Set up this microscope"), measured on BCCD.

    .venv/bin/python benchmarks/bench_adapt.py [--model DIR] [--part test] [--repeats 3]
        [--json OUT] [--plot PNG]

BCCD (another lab, stain and camera than PBC; MIT) has 247 fields; 228 have one white
cell whose type is known. ``--part`` keeps the fields of one half of
``benchmarks/bccd_split.json`` (``test``: 112 typed fields, the half no model here was
trained on; the default when the model's card says it trained on BCCD's other half, so
no cell used here was ever seen in training) or ``all``. The whole pipeline locates and
crops the cells as the app does live. Steps, as the set-up flow runs them:

0. before: the model as shipped.
1. calibrated (no labels): batch-normalisation and appearance statistics re-estimated on
   every located cell of the part's fields (the fields scored are among them: that is how
   a lab calibrates on the slides it reads), and, to show it does not depend on that, on
   the other half of the fields only (2-fold over fields).
2. taught: the calibrated model fine-tuned on k labelled cells per class (k = 5, 10, 20,
   capped so that each class keeps at least one cell to test on), with the package's
   replay cells; scored on the typed cells not used for teaching. Each k is repeated with
   different random draws; mean and standard deviation over the draws.

Accuracy is "right class" (a cell below the unidentified threshold counts as wrong), the
same averaged over the classes present, and "top class" (threshold ignored). The "PBC
check" is the held-back replay cells of the training data (64, 8 per class) before and
after teaching. No patient identifiers exist; BCCD's rare classes (2 basophils, 11
monocytes in all) leave few cells to test: read the spread, not the third digit.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.adapt.labelled import LabelledSet
from micro_app.adapt.microscope import calibrate
from micro_app.adapt.teach import TeachConfig, score_cells, teach
from micro_app.core.engine import Engine
from micro_app.core.field_eval import load_typed_fields, typed_crops
from micro_app.core.imageio import list_images, read_image_rgb
from micro_app.core.models import default_model_dir, load_package
from micro_app.core.models.classifier import Classifier

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SPLIT = Path(__file__).resolve().parent / "bccd_split.json"
KS = (5, 10, 20)


def _score(pkg: Any, x: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, Any]:
    return score_cells(Classifier(pkg), x, y, threshold)


def draw(y: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Teaching mask: k cells of each class, at most all but one."""
    mask = np.zeros(len(y), bool)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        mask[idx[: min(k, len(idx) - 1)]] = True
    return mask


def trained_on_bccd(card: Any) -> bool:
    also = (card.training_data or {}).get("also_trained_on") or {}
    return "BCCD" in str(also.get("name", ""))


def run(
    model: Path, bccd: Path, repeats: int, epochs: int, work: Path, part: str = "all"
) -> dict[str, Any]:
    base = load_package(model)
    card = base.card
    threshold = card.unidentified_threshold if card.unidentified_threshold is not None else 0.5
    engine = Engine(base)
    keep = None if part == "all" else set(json.loads(SPLIT.read_text())[part])
    fields = [f for f in load_typed_fields(bccd) if keep is None or f.image.name in keep]
    crops = typed_crops(engine, fields)
    found = [i for i, c in enumerate(crops) if c is not None]
    x = np.stack([crops[i] for i in found])  # type: ignore[misc]
    y = np.array([card.classes.index(fields[i].wbc_type) for i in found])
    paths = [p for p in list_images(bccd / "images") if keep is None or p.name in keep]
    per_field = [engine.crops(read_image_rgb(p)) for p in paths]
    all_cells, n_img = np.concatenate(per_field), len(paths)
    out: dict[str, Any] = {
        "model": card.summary(),
        "part": part,
        "typed_fields": len(fields),
        "typed_located": len(found),
        "types": {card.classes[c]: int((y == c).sum()) for c in np.unique(y)},
        "calibration_cells": len(all_cells),
        "calibration_images": n_img,
        "always_neutrophil": round(float(np.mean(y == card.classes.index("neutrophil"))), 4),
    }
    out["before"] = _score(base, x, y, threshold)
    t0 = time.perf_counter()
    cal = calibrate(base, all_cells, work / "calibrated", n_images=n_img)
    out["calibration_seconds"] = round(time.perf_counter() - t0, 2)
    cal_pkg = load_package(cal.package)
    out["calibrated"] = _score(cal_pkg, x, y, threshold)
    out["calibration_batchnorm"] = cal.report["batchnorm_layers"]
    # 2-fold over fields: calibrate on one half, score the typed cells of the other
    names = [p.name for p in paths]
    half = np.random.default_rng(0).permutation(len(paths)) % 2
    right = top = n = 0
    for fold in (0, 1):
        fit = np.concatenate([per_field[i] for i in range(len(paths)) if half[i] == fold])
        pkg = load_package(
            calibrate(
                base,
                fit,
                work / f"half{fold}",
                n_images=int(np.sum(half == fold)),
                min_cells=10,  # BCCD is small: half its fields hold ~17 cells
            ).package
        )
        test = [j for j, i in enumerate(found) if half[names.index(fields[i].image.name)] != fold]
        s = _score(pkg, x[test], y[test], threshold)
        right += s["accuracy"] * s["cells"]
        top += s["top_class_accuracy"] * s["cells"]
        n += s["cells"]
    out["calibrated_other_half"] = {
        "cells": n,
        "accuracy": round(right / n, 4),
        "top_class_accuracy": round(top / n, 4),
    }
    curve = []
    cfg = TeachConfig(epochs=epochs)
    neutrophil = card.classes.index("neutrophil")
    for k in KS:
        runs = []
        for r in range(repeats):
            mask = draw(y, k, np.random.default_rng(1000 * k + r))
            cells = LabelledSet(x[mask], y[mask], x[~mask], y[~mask], card.classes, {})
            t0 = time.perf_counter()
            res = teach(
                cal_pkg,
                cells,
                work / f"k{k}_r{r}",
                config=cfg,
                before_package=base,
            )
            rep = res.report
            cal_s = _score(cal_pkg, x[~mask], y[~mask], threshold)
            test_y = y[~mask]
            runs.append(
                {
                    "labelled": int(mask.sum()),
                    "tested": int((~mask).sum()),
                    "always_neutrophil": float(np.mean(test_y == neutrophil)),
                    "before": rep["before"]["accuracy"],
                    "before_top": rep["before"]["top_class_accuracy"],
                    "before_balanced": rep["before"]["balanced_accuracy"],
                    "calibrated": cal_s["accuracy"],
                    "calibrated_top": cal_s["top_class_accuracy"],
                    "calibrated_balanced": cal_s["balanced_accuracy"],
                    "after": rep["after"]["accuracy"],
                    "after_top": rep["after"]["top_class_accuracy"],
                    "after_balanced": rep["after"]["balanced_accuracy"],
                    "training_data_before": rep["training_data_before"]["accuracy"],
                    "training_data_after": rep["training_data_after"]["accuracy"],
                    "seconds": round(time.perf_counter() - t0, 1),
                }
            )
            shutil.rmtree(res.package, ignore_errors=True)
            print(f"k={k} draw {r}: {runs[-1]}", flush=True)
        curve.append({"per_class": k, **_summary(runs), "runs": runs})
    out["curve"] = curve
    return out


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k in runs[0] if k not in ("seconds",)]
    out: dict[str, Any] = {}
    for key in keys:
        v = np.array([r[key] for r in runs], float)
        out[key] = round(float(v.mean()), 4)
        out[key + "_sd"] = round(float(v.std()), 4)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--bccd", type=Path, default=DATA / "bccd")
    ap.add_argument(
        "--part",
        choices=("test", "train", "all"),
        default=None,
        help="the fields of this half of bccd_split.json (test when the model trained on "
        "BCCD's other half, else all)",
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=TeachConfig().epochs)
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--plot", type=Path, help="draw the curve as a PNG")
    ap.add_argument("--from-json", type=Path, help="print and plot earlier results, no run")
    args = ap.parse_args()
    if args.from_json:
        r = json.loads(args.from_json.read_text(encoding="utf-8"))
        report(r, args.plot)
        return 0
    folder = args.model or default_model_dir()
    if folder is None:
        raise SystemExit("no model: pass --model DIR")
    if not (args.bccd / "wbc_types.csv").is_file():
        raise SystemExit(f"BCCD not found at {args.bccd}: pass --bccd DIR")
    part = args.part
    if part is None:
        part = "test" if trained_on_bccd(load_package(folder).card) else "all"
    elif part != "test" and trained_on_bccd(load_package(folder).card):
        raise SystemExit("this model trained on BCCD's training half: score it with --part test")
    work = Path(tempfile.mkdtemp(prefix="bench_adapt_"))
    try:
        r = run(folder, args.bccd, args.repeats, args.epochs, work, part)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(r, indent=2) + "\n", encoding="utf-8")
    report(r, args.plot)
    return 0


def report(r: dict[str, Any], plot: Path | None) -> None:
    b, c, h = r["before"], r["calibrated"], r["calibrated_other_half"]
    print(
        f"BCCD ({r.get('part', 'all')} fields) typed cells {r['typed_located']}/"
        f"{r['typed_fields']} {r['types']}; "
        f"always neutrophil {r['always_neutrophil']:.3f}"
    )
    print(f"before      right {b['accuracy']:.3f}  top {b['top_class_accuracy']:.3f}")
    print(
        f"calibrated  right {c['accuracy']:.3f}  top {c['top_class_accuracy']:.3f} "
        f"({r['calibration_cells']} cells, {r['calibration_seconds']} s); other half of "
        f"the fields: right {h['accuracy']:.3f} top {h['top_class_accuracy']:.3f}"
    )
    print(
        "k/class labelled tested | always-N | right class: before calibrated taught | "
        "balanced: before taught | PBC check"
    )
    for p in r["curve"]:
        print(
            f"{p['per_class']:>7} {p['labelled']:>8.1f} {p['tested']:>6.1f} | "
            f"{p['always_neutrophil']:.3f}    | {p['before']:.3f} {p['calibrated']:.3f} "
            f"{p['after']:.3f}±{p['after_sd']:.3f} (top {p['after_top']:.3f}) | "
            f"{p['before_balanced']:.3f} {p['after_balanced']:.3f}±{p['after_balanced_sd']:.3f} | "
            f"{p['training_data_before']:.3f}->{p['training_data_after']:.3f}"
        )
    if plot is not None:
        draw_curve(r, plot)
        print(f"curve -> {plot}")


def draw_curve(r: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = [0] + [p["per_class"] for p in r["curve"]]
    labelled = [0.0] + [p["labelled"] for p in r["curve"]]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    for key, name, colour in (
        ("", "right class", "#0072b2"),
        ("_balanced", "right class, mean over classes", "#d55e00"),
    ):
        start = r["calibrated"].get("accuracy" if not key else "balanced_accuracy", 0.0)
        means = [start] + [p["after" + key] for p in r["curve"]]
        sds = [0.0] + [p["after" + key + "_sd"] for p in r["curve"]]
        ax.errorbar(ks, means, yerr=sds, marker="o", capsize=3, color=colour, label=name)
        before = r["before"].get("accuracy" if not key else "balanced_accuracy", 0.0)
        ax.axhline(before, color=colour, ls=":", lw=1)
    base = [r["always_neutrophil"]] + [p["always_neutrophil"] for p in r["curve"]]
    ax.plot(ks, base, color="grey", ls="--", label="always neutrophil (right class)")
    ax.set_xticks(ks, [f"{k}\n({n:.0f} cells)" for k, n in zip(ks, labelled, strict=True)])
    ax.set_xlabel("labelled cells per class (capped: each class keeps one to test)")
    ax.set_ylabel("accuracy on the typed BCCD cells not used")
    ax.set_ylim(0, 1)
    ax.set_title("PBC model taught on BCCD (dotted: before any adaptation)", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
