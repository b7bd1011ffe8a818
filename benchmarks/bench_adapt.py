"""Setting a model up for another lab's microscope ("Set up this microscope"), on BCCD.

    .venv/bin/python benchmarks/bench_adapt.py [--model DIR] [--part test] [--repeats 3]
        [--ks 5 10 20] [--pool fields|none|both] [--select random|app|both]
        [--json OUT] [--plot PNG]

BCCD (another lab, stain and camera than PBC; MIT) has 247 fields; 228 have one white
cell whose type is known. ``--part test`` keeps the 112 typed fields of the half of
``benchmarks/bccd_split.json`` no model here was trained on (the default when the model's
card says it trained on the other half). The whole pipeline locates and crops the cells
as the app does live. Steps, as the set-up flow runs them:

0. before: the model as shipped.
1. calibrated (no labels) on every located cell of the part's fields: the batch-norm
   re-estimate alone (AdaBN, what calibration did before the guard), and what the guard
   keeps (``adapt.guard``); also on the other half of the fields only (2-fold).
2. taught: k labelled cells per class (k in ``--ks``, capped so that each class keeps at
   least one cell to test), from the starting point the set-up chooses, with the other
   located cells of the fields as the unlabelled pool (``--pool fields``; ``none``: labels
   only). Which cells get labelled: ``random`` draws, or ``app``: a technician working
   through the set-up grid in the app's order (``adapt.select``: grouped by suggested
   class, the typical cell of each kind first) on a random 90 % of the fields, labelling
   a cell when its class still needs labels. Each setting is repeated
   ``--repeats`` times with different draws; mean and standard deviation over draws.

Scored on the typed cells not labelled: "right class" (a cell below the unidentified
threshold counts as wrong), the same averaged over the classes present, and "top class"
(threshold ignored). The unlabelled pool holds the scored cells too (the set-up's own
collected cells are what it pseudo-labels; no label of theirs is used), so this measures
the set-up on the slide it was made on. The "PBC check" is the held-back replay cells of
the training data before and after teaching. No patient identifiers exist; BCCD's rare
classes (1 basophil, 5 monocytes in the test half) leave few cells to test: read the
spread, not the third digit.
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
from micro_app.adapt.scoring import score_cells
from micro_app.adapt.select import grid_order
from micro_app.adapt.teach import TeachConfig, teach
from micro_app.core.appearance import Appearance, features_batch
from micro_app.core.engine import Engine
from micro_app.core.field_eval import load_typed_fields, typed_crops
from micro_app.core.imageio import list_images, read_image_rgb
from micro_app.core.models import default_model_dir, load_package
from micro_app.core.models.classifier import Classifier

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SPLIT = Path(__file__).resolve().parent / "bccd_split.json"


def _score(pkg: Any, x: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, Any]:
    return score_cells(Classifier(pkg), x, y, threshold)


def draw(y: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Teaching mask: k cells of each class, at most all but one."""
    mask = np.zeros(len(y), bool)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        mask[idx[: min(k, len(idx) - 1)]] = True
    return mask


def app_pick(
    pkg: Any, x: np.ndarray, y: np.ndarray, k: int, rng: np.random.Generator
) -> np.ndarray:
    """Teaching mask as a technician fills it in the set-up grid: the cells of a random
    90 % of the fields, grouped by suggested class in the app's order, each labelled while
    its class still needs labels (at most all but one of a class)."""
    clf = Classifier(pkg)
    seen = rng.permutation(len(x))[: int(0.9 * len(x))]
    probs, feats = clf.predict_full(x[seen])
    grid = grid_order(probs, feats.reshape(len(seen), -1) if feats is not None else None, k)
    cap = {c: min(k, int((y == c).sum()) - 1) for c in np.unique(y)}
    mask = np.zeros(len(y), bool)
    for i in grid:
        j = seen[i]
        if cap[y[j]] > 0:
            mask[j] = True
            cap[y[j]] -= 1
    return mask


def trained_on_bccd(card: Any) -> bool:
    also = (card.training_data or {}).get("also_trained_on") or {}
    return "BCCD" in str(also.get("name", ""))


def provisional(pkg: Any, sets: dict[str, np.ndarray]) -> dict[str, float]:
    """Share of each set's cells the package's appearance check calls unlike."""
    if pkg.card.appearance is None:
        return {}
    app = Appearance.from_dict(pkg.card.appearance)
    return {k: app.shares(features_batch(v))["unlike"] for k, v in sets.items() if len(v)}


def run(
    model: Path,
    bccd: Path,
    repeats: int,
    epochs: int,
    work: Path,
    part: str = "all",
    ks: tuple[int, ...] = (5, 10, 20),
    pools: tuple[str, ...] = ("fields",),
    selections: tuple[str, ...] = ("random",),
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
        "provisional_before": provisional(base, {"bccd": x}),
    }
    out["before"] = _score(base, x, y, threshold)
    t0 = time.perf_counter()
    cal = calibrate(base, all_cells, work / "calibrated", n_images=n_img, source_name="BCCD set-up")
    out["calibration_seconds"] = round(time.perf_counter() - t0, 2)
    cal_pkg = load_package(cal.package)
    out["calibrated"] = _score(cal_pkg, x, y, threshold)
    out["calibration_guard"] = cal.report["guard"]
    out["calibration_normalisation"] = cal.report["normalisation"]
    out["provisional_after_calibration"] = provisional(cal_pkg, {"bccd": x})
    if cal.report["normalisation"] == "parent":  # what AdaBN alone would have given
        from micro_app.adapt.batchnorm import recalibrate_batchnorm
        from micro_app.core.models.classifier import prepare_batch
        from micro_app.training.pipeline import predict_features

        raw = load_package(model)
        recalibrate_batchnorm(raw.model, prepare_batch(all_cells, card))
        p = predict_features(raw.model, x, card)
        right = (p.argmax(1) == y) & (p.max(1) >= threshold)
        out["adabn_unguarded"] = {
            "accuracy": round(float(right.mean()), 4),
            "top_class_accuracy": round(float(np.mean(p.argmax(1) == y)), 4),
        }
    curve = []
    for pool_kind in pools:
        for how in selections:
            for k in ks:
                runs = []
                for r in range(repeats):
                    rng = np.random.default_rng(1000 * k + r)
                    mask = draw(y, k, rng) if how == "random" else app_pick(cal_pkg, x, y, k, rng)
                    runs.append(
                        _teach_once(
                            base,
                            cal_pkg,
                            x,
                            y,
                            mask,
                            all_cells if pool_kind == "fields" else None,
                            epochs,
                            r,
                            threshold,
                            work / f"{pool_kind}_{how}_k{k}_r{r}",
                        )
                    )
                    print(f"pool={pool_kind} select={how} k={k} draw {r}: {runs[-1]}", flush=True)
                curve.append(
                    {
                        "pool": pool_kind,
                        "select": how,
                        "per_class": k,
                        **_summary(runs),
                        "runs": runs,
                    }
                )
    out["curve"] = curve
    return out


def _teach_once(
    base: Any,
    cal_pkg: Any,
    x: np.ndarray,
    y: np.ndarray,
    mask: np.ndarray,
    pool: np.ndarray | None,
    epochs: int,
    seed: int,
    threshold: float,
    folder: Path,
) -> dict[str, Any]:
    card = base.card
    cells = LabelledSet(x[mask], y[mask], x[:0], y[:0], card.classes, {})
    # the set-up's starting point: the model right on more of the labelled cells
    a = _score(base, x[mask], y[mask], threshold)["accuracy"]
    b = _score(cal_pkg, x[mask], y[mask], threshold)["accuracy"]
    start = base if a > b else cal_pkg
    t0 = time.perf_counter()
    res = teach(
        start,
        cells,
        folder,
        config=TeachConfig(epochs=epochs, seed=seed, pseudo_labels=pool is not None),
        before_package=base,
        pool=pool,
    )
    child = load_package(res.package)
    rep = res.report
    test_y = y[~mask]
    after = _score(child, x[~mask], test_y, threshold)
    before = _score(base, x[~mask], test_y, threshold)
    out = {
        "labelled": int(mask.sum()),
        "tested": int((~mask).sum()),
        "started_from": "shipped" if start is base else "calibrated",
        "always_neutrophil": float(np.mean(test_y == card.classes.index("neutrophil"))),
        "before": before["accuracy"],
        "before_top": before["top_class_accuracy"],
        "before_balanced": before["balanced_accuracy"],
        "after": after["accuracy"],
        "after_top": after["top_class_accuracy"],
        "after_balanced": after["balanced_accuracy"],
        "pseudo_labelled": rep["pseudo_labels"]["kept"],
        "training_data_before": rep["training_data_before"]["accuracy"],
        "training_data_after": rep["training_data_after"]["accuracy"],
        "provisional_after": provisional(child, {"bccd": x[~mask]}).get("bccd"),
        # the atypical flag after set-up: share of the lab's labelled cells it marks
        "atypical_lab_cells": (child.card.extra.get("open_set") or {}).get(
            "flagged_per_group", [None, None]
        )[-1],
        "seconds": round(time.perf_counter() - t0, 1),
    }
    shutil.rmtree(res.package, ignore_errors=True)
    return out


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float)) and k != "seconds"]
    out: dict[str, Any] = {}
    for key in keys:
        v = np.array([r[key] for r in runs if r[key] is not None], float)
        out[key] = round(float(v.mean()), 4) if len(v) else None
        out[key + "_sd"] = round(float(v.std()), 4) if len(v) else None
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
    ap.add_argument("--ks", type=int, nargs="+", default=[5, 10, 20])
    ap.add_argument("--pool", choices=("fields", "none", "both"), default="fields")
    ap.add_argument("--select", choices=("random", "app", "both"), default="random")
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
    pools = ("fields", "none") if args.pool == "both" else (args.pool,)
    selections = ("random", "app") if args.select == "both" else (args.select,)
    work = Path(tempfile.mkdtemp(prefix="bench_adapt_"))
    try:
        r = run(
            folder,
            args.bccd,
            args.repeats,
            args.epochs,
            work,
            part,
            tuple(args.ks),
            pools,
            selections,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(r, indent=2) + "\n", encoding="utf-8")
    report(r, args.plot)
    return 0


def report(r: dict[str, Any], plot: Path | None) -> None:
    b, c = r["before"], r["calibrated"]
    print(
        f"BCCD ({r.get('part', 'all')} fields) typed cells {r['typed_located']}/"
        f"{r['typed_fields']} {r['types']}; always neutrophil {r['always_neutrophil']:.3f}"
    )
    print(f"before      right {b['accuracy']:.3f}  top {b['top_class_accuracy']:.3f}")
    raw = r.get("adabn_unguarded")
    print(
        f"calibrated  right {c['accuracy']:.3f}  top {c['top_class_accuracy']:.3f} "
        f"(normalisation: {r['calibration_normalisation']}; {r['calibration_guard']['reason']})"
        + (f"; AdaBN unguarded right {raw['accuracy']:.3f}" if raw else "")
    )
    print(
        f"provisional: before {r['provisional_before']}, after calibration "
        f"{r['provisional_after_calibration']}"
    )
    print(
        "pool   select k/class labelled tested | right class: before -> taught | "
        "balanced: before -> taught | top | pseudo | PBC check | provisional"
    )
    for p in r["curve"]:
        print(
            f"{p['pool']:<6} {p['select']:<6} {p['per_class']:>7} {p['labelled']:>8.1f} "
            f"{p['tested']:>6.1f} | {p['before']:.3f} -> {p['after']:.3f}±{p['after_sd']:.3f} | "
            f"{p['before_balanced']:.3f} -> {p['after_balanced']:.3f}±"
            f"{p['after_balanced_sd']:.3f} | {p['after_top']:.3f} | "
            f"{p['pseudo_labelled']:.0f} | {p['training_data_before']:.3f}->"
            f"{p['training_data_after']:.3f} | {p['provisional_after']}"
        )
    if plot is not None:
        draw_curve(r, plot)
        print(f"curve -> {plot}")


def draw_curve(r: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    colours = {"fields": "#0072b2", "none": "#d55e00"}
    styles = {"random": "-", "app": "--"}
    for pool in colours:
        for how in styles:
            pts = [p for p in r["curve"] if p["pool"] == pool and p["select"] == how]
            if not pts:
                continue
            ks = [p["per_class"] for p in pts]
            name = ("labels + unlabelled cells" if pool == "fields" else "labels only") + (
                ", app's order" if how == "app" else ""
            )
            ax.errorbar(
                ks,
                [p["after"] for p in pts],
                yerr=[p["after_sd"] for p in pts],
                marker="o",
                capsize=3,
                color=colours[pool],
                ls=styles[how],
                label=name,
            )
    ax.axhline(r["before"]["accuracy"], color="grey", ls=":", lw=1, label="shipped model")
    ax.axhline(r["always_neutrophil"], color="grey", ls="--", lw=1, label="always neutrophil")
    ax.set_xlabel("labelled cells per class (capped: each class keeps one to test)")
    ax.set_ylabel("right class on the typed BCCD cells not labelled")
    ax.set_ylim(0.4, 1)
    ax.set_title("Set up on BCCD's test half (the default never trained on it)", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
