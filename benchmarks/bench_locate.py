"""Measure ``locate_cells`` on the real BCCD fields (and the PBC crops).

Reports WBC recall and false positives per field (matching rule: a ground-truth WBC is
found when a located cell's centre lies inside its box, one-to-one; see
``micro_app.core.detection_eval``), milliseconds per field, and the red-cell scale
estimate against the RBC boxes. Usage::

    .venv/bin/python benchmarks/bench_locate.py [--data ../shared/data/bccd] [--draw /tmp/out]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from micro_app.core.detection_eval import load_voc_dir, match_centres, median_box_size, summarise
from micro_app.core.locate import LocateParams, LocateResult, locate_cells
from micro_app.core.preprocess import PreprocessParams
from micro_app.core.scale import RBC_DIAMETER_UM, estimate_um_per_px

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "bccd"
PBC_CLASSES = ("basophil", "eosinophil", "ig", "lymphocyte", "monocyte", "neutrophil")


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def draw(image: np.ndarray, result: LocateResult, truths: list, path: Path) -> None:
    out = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    contours, _ = cv2.findContours(result.mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, (0, 255, 255), 1)
    for t in truths:
        cv2.rectangle(out, (t.x0, t.y0), (t.x1 - 1, t.y1 - 1), (255, 0, 0), 2)
    for c in result.cells:
        b, n = c.box, c.nucleus_box
        cv2.rectangle(out, (b.x0, b.y0), (b.x1 - 1, b.y1 - 1), (0, 200, 0), 2)
        cv2.rectangle(out, (n.x0, n.y0), (n.x1 - 1, n.y1 - 1), (0, 0, 255), 1)
        cv2.circle(out, (round(c.center[0]), round(c.center[1])), 4, (0, 0, 255), -1)
    label = f"{result.um_per_px:.4f} um/px ({result.scale_source})"
    cv2.putText(out, label, (5, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 2)
    cv2.imwrite(str(path), out)


def bench_bccd(args: argparse.Namespace, pre: PreprocessParams, loc: LocateParams) -> None:
    pairs = load_voc_dir(args.data)
    if not pairs:
        raise SystemExit(f"no annotations under {args.data / 'annotations'}")
    matches, ms, ratios, none_fields, estimated = [], [], [], 0, 0
    for image_path, ann in pairs:
        image = read_rgb(image_path)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            result = locate_cells(image, pre, loc, args.um_per_px)
            times.append((time.perf_counter() - t0) * 1000.0)
        ms.append(statistics.median(times))
        truths = ann.boxes("WBC")
        m = match_centres(truths, [c.center for c in result.cells])
        matches.append(m)
        rbc = median_box_size(ann.boxes("RBC"), ann.width, ann.height)
        if result.scale_source != "estimated":
            none_fields += 1
        else:
            estimated += 1
            if rbc is not None:
                ratios.append(RBC_DIAMETER_UM / result.um_per_px / rbc)
        if args.verbose:
            print(
                f"{image_path.name}: WBC {m.n_truth} found {m.true_positives} FP "
                f"{m.false_positives}  scale {result.um_per_px:.4f} ({result.scale_source}) "
                f"RBC box {rbc}  {ms[-1]:.1f} ms"
            )
        if args.draw:
            args.draw.mkdir(parents=True, exist_ok=True)
            draw(image, result, truths, args.draw / f"{image_path.stem}.png")
    s = summarise(matches)
    print(f"BCCD {args.data}: {s.images} fields, {s.truths} WBC")
    print(f"  recall {s.true_positives}/{s.truths} = {s.recall:.3f} (centre inside the GT box)")
    print(f"  false positives {s.false_positives} = {s.fp_per_image:.2f} per field")
    how = "calibrated" if args.um_per_px else "estimated per frame"
    print(
        f"  locate_cells ms/field: mean {statistics.mean(ms):.2f}, "
        f"median {statistics.median(ms):.2f}, max {max(ms):.2f} (scale {how})"
    )
    if args.um_per_px is None:
        r = np.array(ratios)
        print(
            f"  scale: estimated on {estimated} fields ({len(r)} with RBC boxes), "
            f"no estimate on {none_fields}"
        )
        if len(r):
            err = np.abs(r - 1)
            print(
                f"  estimated RBC diameter / median RBC box: median {np.median(r):.3f}, "
                f"range {r.min():.3f}..{r.max():.3f}; |error| median {np.median(err):.3f}, "
                f"p90 {np.percentile(err, 90):.3f}"
            )
            rc = r / args.box_slack
            errc = np.abs(rc - 1)
            print(
                f"  vs box x {args.box_slack} (boxes are looser than the cells): median ratio "
                f"{np.median(rc):.3f}; |error| median {np.median(errc):.3f}, "
                f"p90 {np.percentile(errc, 90):.3f}, max {errc.max():.3f}"
            )


def bench_pbc(pbc: Path, per_class: int, pre: PreprocessParams, loc: LocateParams) -> None:
    """Each PBC crop has one centred WBC; found = a located cell centred within 32 px.

    Run twice: scale estimated per crop, then calibrated at the median of those estimates
    (all PBC crops come from one CellaVision set-up, so one scale fits them all)."""
    crops = {
        c: [read_rgb(f) for f in sorted((pbc / c).glob("*.jpg"))[:per_class]] for c in PBC_CLASSES
    }
    estimates = [e for images in crops.values() for im in images if (e := estimate_um_per_px(im))]
    calibrated = float(np.median(estimates)) if estimates else None
    for scale in (None, calibrated):
        how = "estimated per crop" if scale is None else f"calibrated {scale:.4f} um/px"
        print(f"PBC {pbc}: first {per_class} crops per class, scale {how}")
        for cls, images in crops.items():
            found = extra = est = 0
            for image in images:
                h, w = image.shape[:2]
                r = locate_cells(image, pre, loc, scale)
                central = [
                    c for c in r.cells if math.hypot(c.center[0] - w / 2, c.center[1] - h / 2) < 32
                ]
                found += bool(central)
                extra += len(r.cells) - min(1, len(central))
                est += r.scale_source == "estimated"
            note = f", scale estimated on {est}" if scale is None else ""
            print(
                f"  {cls:11s} central cell found {found}/{len(images)}, other cells {extra}{note}"
            )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="BCCD folder (images/, annotations/)"
    )
    ap.add_argument("--pbc", type=Path, default=None, help="also check PBC crops in this folder")
    ap.add_argument("--pbc-per-class", type=int, default=50)
    ap.add_argument(
        "--um-per-px", type=float, default=None, help="calibrated scale instead of estimating"
    )
    ap.add_argument("--repeat", type=int, default=5, help="timing runs per field (median taken)")
    ap.add_argument(
        "--box-slack",
        type=float,
        default=0.85,
        help="cell extent / RBC box size, measured on isolated red cells",
    )
    ap.add_argument("--draw", type=Path, default=None, help="write annotated PNGs here")
    ap.add_argument(
        "--threads", type=int, default=None, help="cv2.setNumThreads (default: OpenCV's)"
    )
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"BCCD data not found at {args.data}; pass --data", file=sys.stderr)
        return 2
    if args.threads is not None:
        cv2.setNumThreads(args.threads)
    pre, loc = PreprocessParams(), LocateParams()
    print(f"preprocess {pre.to_dict()}\nlocate {loc.to_dict()}")
    bench_bccd(args, pre, loc)
    if args.pbc:
        bench_pbc(args.pbc, args.pbc_per_class, pre, loc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
