"""``micro-app adapt MODEL IMAGES... --out DIR [--labels DIR]``: the window's two
adaptations from the command line.

1. With IMAGES (fields from this microscope; files or folders): locate the white cells,
   re-estimate the model's normalisation on them, re-base its unlike-the-training-data
   check (no labels).
2. With ``--labels DIR`` (class folders of cell crops, or the app's labelled-cell folder):
   fine-tune on the training side, mixed with the package's replay cells, and report
   before/after on the held-back side. A class folder whose name the model lacks
   (``blast``) adds that class.
Both together: calibrate first, then teach the calibrated model (or the parent, when it is
right on more of the labelled cells), with the fields' other cells pseudo-labelled; the
calibrated package is kept beside the output as ``<OUT>-calibrated``, so the lineage stays
whole on disk.
Nothing here imports TensorFlow at module level.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

COMMANDS: frozenset[str] = frozenset({"adapt"})

EPILOG = """\
examples:
  micro-app adapt models/lite0_pbc_bccd fields/ --out models/our-scope
      (calibrate to this microscope: no labels)
  micro-app adapt models/lite0_pbc_bccd fields/ --labels labelled/ --out models/our-scope-2
      (calibrate, then fine-tune on labelled/<class>/<crop>; before/after on held-back cells;
      a folder labelled/blast/ adds the class "blast")
"""


def register(sub: argparse._SubParsersAction) -> None:
    a = sub.add_parser(
        "adapt",
        help="adapt a model to this microscope: calibrate on fields, teach from labels",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a.add_argument("model", type=Path, metavar="MODEL", help="model package to start from")
    a.add_argument(
        "images",
        type=Path,
        nargs="*",
        metavar="IMAGES",
        help="fields from this microscope (images or folders) for the no-label calibration",
    )
    a.add_argument("--out", type=Path, required=True, help="package folder to write")
    a.add_argument(
        "--labels",
        type=Path,
        metavar="DIR",
        help="labelled cell crops, DIR/<class>/<image> (or the app's labelled-cell folder)",
    )
    a.add_argument("--epochs", type=int, default=20, help="teaching epochs (20)")
    a.add_argument(
        "--lr", type=float, default=1e-4, dest="learning_rate", help="after the warm-up (1e-4)"
    )
    a.add_argument(
        "--no-pseudo-labels",
        action="store_true",
        help="teach the labelled cells only, not the fields' cells the model is sure of",
    )
    a.add_argument("--seed", type=int, default=0)
    a.add_argument(
        "--um-per-px", type=float, help="calibrated scale; default: estimated from red cells"
    )
    a.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def run(args: argparse.Namespace) -> int:
    from micro_app.core.errors import InputError

    if not args.images and args.labels is None:
        raise InputError("give fields to calibrate on (IMAGES), --labels DIR, or both")
    for folder in (args.out, calibrated_dir(args.out)) if args.images else (args.out,):
        if folder.exists():
            raise InputError(f"{folder} already exists: choose a new output folder")
    out: dict[str, Any] = {"model": str(args.model), "out": str(args.out)}
    say = _printer(args.json)
    from micro_app.core.models import load_package

    parent = load_package(args.model)
    original = parent
    cells = _labels(args.labels, parent, say) if args.labels is not None else None
    pool = None
    if args.images:
        parent, out["calibration"], pool = _calibrate(args, parent, say)
    if cells is not None:
        if args.images:
            parent = _start(original, parent, cells, say)
        out["teach"] = _teach(args, parent, original, cells, pool, say)
    if args.json:
        sys.stdout.write(json.dumps(out) + "\n")
    return 0


def calibrated_dir(out: Path) -> Path:
    return out.with_name(out.name + "-calibrated")


def _printer(quiet: bool) -> Any:
    def say(text: str) -> None:
        print(text, file=sys.stderr if quiet else sys.stdout)

    return say


def _calibrate(args: argparse.Namespace, parent: Any, say: Any) -> tuple[Any, dict[str, Any], Any]:
    from micro_app.adapt.microscope import calibrate, collect_cells
    from micro_app.core.engine import Engine, EngineParams
    from micro_app.core.imageio import expand_inputs, is_image, read_image_rgb
    from micro_app.core.models import load_package

    inputs = expand_inputs(args.images)
    paths = [p for p in inputs if is_image(p)]
    if len(paths) < len(inputs):
        say(f"ignored {len(inputs) - len(paths)} inputs that are not images (videos, folders)")
    engine = Engine(parent, params=EngineParams(um_per_px=args.um_per_px))
    crops, n = collect_cells(engine, (read_image_rgb(p) for p in paths))
    say(f"located {len(crops)} white cells in {n} images")
    target = args.out if args.labels is None else calibrated_dir(args.out)
    result = calibrate(parent, crops, target, n_images=n, seed=args.seed)
    r = result.report
    before, after = r["unlike_share_before"], r.get("unlike_share_after")
    if r.get("normalisation") == "parent":
        say(f"normalisation: the model's own kept, since {r['guard']['reason']}")
    elif r["batchnorm_layers"]:
        moved = max(x["mean_shift_sd"] for x in r["batchnorm_layers"])
        say(
            f"normalisation: {len(r['batchnorm_layers'])} layers re-estimated on this "
            f"microscope (largest mean shift {moved:.2f} sd; {r['guard']['reason']})"
        )
    if before is not None:
        say(
            f"cells unlike the training images: {before:.0%} before, "
            f"{'n/a' if after is None else f'{after:.0%}'} now that this microscope is a source"
        )
    say(f"-> {result.package} (no labels used: accuracy on this microscope is unmeasured)")
    return load_package(result.package), r, crops


def _start(original: Any, calibrated: Any, cells: Any, say: Any) -> Any:
    """Teach from the calibrated model unless the parent is right on more labelled cells."""
    import numpy as np

    from micro_app.adapt.scoring import score_cells
    from micro_app.core.models.classifier import Classifier

    x = np.concatenate([cells.train_images, cells.holdout_images])
    y = np.concatenate([cells.train_labels, cells.holdout_labels])
    t = original.card.unidentified_threshold or 0.5
    a = score_cells(Classifier(original), x, y, t, cells.classes)["accuracy"]
    b = score_cells(Classifier(calibrated), x, y, t, cells.classes)["accuracy"]
    if a > b:
        say(
            f"teaching from {original.path.name}: right on {a:.0%} of the labelled cells, the "
            f"calibrated model on {b:.0%}"
        )
        return original
    return calibrated


def _labels(folder: Path, package: Any, say: Any) -> Any:
    """Read and check the labelled cells before anything is written."""
    from micro_app.adapt.labelled import read_labels
    from micro_app.adapt.teach import check_teachable

    card = package.card
    cells = read_labels(folder, card.classes, card.input_size, add_classes=True)
    for name in cells.classes[len(card.classes) :]:
        k = cells.classes.index(name)
        n_train = int((cells.train_labels == k).sum())
        n_held = int((cells.holdout_labels == k).sum())
        say(f"new class {name!r}: {n_train} cells to train, {n_held} held back")
    say(
        f"labelled cells: {len(cells.train_labels)} to train {cells.counts('train')}, "
        f"{len(cells.holdout_labels)} held back {cells.counts('holdout')}"
    )
    check_teachable(package, cells)
    return cells


def _teach(
    args: argparse.Namespace, parent: Any, original: Any, cells: Any, pool: Any, say: Any
) -> dict[str, Any]:
    from micro_app.adapt.teach import TeachConfig, teach

    cfg = TeachConfig(
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        seed=args.seed,
        pseudo_labels=not args.no_pseudo_labels,
    )
    last = [-1]

    def progress(text: str, share: float) -> None:
        if text.startswith("epoch"):
            step = int(share * 10)
            if step != last[0]:
                last[0] = step
                say(f"  {text}")

    result = teach(
        parent, cells, args.out, config=cfg, progress=progress, before_package=original, pool=pool
    )
    r = result.report
    for side in ("before", "after"):
        s = r[side]
        if s["cells"]:
            say(
                f"{side:>6}: held-back lab cells {s['cells']}: right class {s['accuracy']:.3f}, "
                f"top class {s['top_class_accuracy']:.3f}; training-data check "
                f"{r['training_data_' + side].get('accuracy', float('nan')):.3f}"
            )
    if not r["holdout_cells"]:
        say("no held-back cells (label at least 3 of a class): the new model is unmeasured")
    else:
        say(f"verdict: {r['verdict']}")
    say(f"-> {result.package}")
    return r
