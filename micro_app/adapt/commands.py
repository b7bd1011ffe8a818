"""``micro-app adapt MODEL IMAGES... --out DIR [--labels DIR]``: the window's two
adaptations from the command line.

1. With IMAGES (fields from this microscope; files or folders): locate the white cells,
   re-estimate the model's normalisation on them, re-base its unlike-the-training-data
   check (no labels).
2. With ``--labels DIR`` (class folders of cell crops, or the app's labelled-cell folder):
   fine-tune on the training side, mixed with the package's replay cells, and report
   before/after on the held-back side.
Both together: calibrate first, then teach the calibrated model; the calibrated package is
kept beside the output as ``<OUT>-calibrated``, so the lineage stays whole on disk.
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
      (calibrate, then fine-tune on labelled/<class>/<crop>; before/after on held-back cells)
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
    a.add_argument("--lr", type=float, default=3e-4, dest="learning_rate", help="(3e-4)")
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
    if args.images:
        parent, out["calibration"] = _calibrate(args, parent, say)
    if cells is not None:
        out["teach"] = _teach(args, parent, original, cells, say)
    if args.json:
        sys.stdout.write(json.dumps(out) + "\n")
    return 0


def calibrated_dir(out: Path) -> Path:
    return out.with_name(out.name + "-calibrated")


def _printer(quiet: bool) -> Any:
    def say(text: str) -> None:
        print(text, file=sys.stderr if quiet else sys.stdout)

    return say


def _calibrate(args: argparse.Namespace, parent: Any, say: Any) -> tuple[Any, dict[str, Any]]:
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
    moved = max((x["mean_shift_sd"] for x in r["batchnorm_layers"]), default=0.0)
    before = r["unlike_share_before"]
    say(
        f"calibrated: {len(r['batchnorm_layers'])} normalisation layers re-estimated "
        f"(largest mean shift {moved:.2f} sd); cells unlike the parent's training images: "
        f"{'n/a' if before is None else f'{before:.0%}'}"
    )
    say(f"-> {result.package} (no labels used: accuracy on this microscope is unmeasured)")
    return load_package(result.package), r


def _labels(folder: Path, package: Any, say: Any) -> Any:
    """Read and check the labelled cells before anything is written."""
    from micro_app.adapt.labelled import read_labels
    from micro_app.adapt.teach import check_teachable

    card = package.card
    cells = read_labels(folder, card.classes, card.input_size)
    if cells.skipped:
        say(f"skipped labels the model has no class for: {cells.skipped}")
    say(
        f"labelled cells: {len(cells.train_labels)} to train {cells.counts('train')}, "
        f"{len(cells.holdout_labels)} held back {cells.counts('holdout')}"
    )
    check_teachable(package, cells)
    return cells


def _teach(
    args: argparse.Namespace, parent: Any, original: Any, cells: Any, say: Any
) -> dict[str, Any]:
    from micro_app.adapt.teach import TeachConfig, teach

    cfg = TeachConfig(epochs=args.epochs, learning_rate=args.learning_rate, seed=args.seed)
    last = [-1]

    def progress(text: str, share: float) -> None:
        if text.startswith("epoch"):
            step = int(share * 10)
            if step != last[0]:
                last[0] = step
                say(f"  {text}")

    result = teach(parent, cells, args.out, config=cfg, progress=progress, before_package=original)
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
