"""How the live view's cost grows with the number of white cells per frame, for the 8-bit
live model and FP32 in the same run: capture to overlay (locate, crop, classify, draw) per
frame, p50 and p95, and the cells classified per second of that path, on this machine.

    .venv/bin/python benchmarks/bench_scaling.py [--model DIR] [--backends onnx_int8 onnx]
        [--cells 1 5 10 20 40] [--sizes 1080x1920] [--json]

The frames are the drawn demo smear with about N white cells each (rendered before
timing); each backend runs the same frames, one after the other.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from micro_app.cli.bench import busy_frames, capture_to_overlay
from micro_app.core.engine import Engine
from micro_app.core.models import default_model_dir, load_package


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--backends", nargs="+", default=["onnx_int8", "onnx"])
    ap.add_argument("--cells", nargs="+", type=int, default=[1, 5, 10, 20, 40])
    ap.add_argument("--sizes", nargs="+", default=["1080x1920"], help="HEIGHTxWIDTH")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    package = load_package(args.model or default_model_dir(), keras=False)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes]
    frames = {
        (size, n): busy_frames(args.frames, n, (size[0], size[1]))
        for size in sizes
        for n in args.cells
    }
    out = []
    for backend in args.backends:
        engine = Engine(package, backend=backend, smooth_scale=True)  # as the live view
        rows = []
        for (size, n), images in frames.items():
            r = capture_to_overlay(engine, images)
            lat, loc = r["latency_ms"], r["locate_ms"]
            r["cells_per_s"] = r["cells_per_frame"] / (lat["mean"] / 1000.0)
            rows.append({"frame": list(size), "cells_asked": n, **r})
            if not args.json:
                print(
                    f"{backend:9s} {size[1]}x{size[0]}, {r['cells_per_frame']:4.1f} cells: "
                    f"p50 {lat['p50']:6.1f} ms, p95 {lat['p95']:6.1f} ms, "
                    f"{r['cells_per_s']:5.0f} cells/s; locating {loc['p50']:5.1f} ms"
                )
        out.append({"backend": backend, "device": engine.device, "rows": rows})
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
