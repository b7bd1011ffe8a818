"""How the live view's cost grows with the frame size and the number of white cells:
capture to overlay (locate, crop, classify, draw) per frame, p50 and p95, on this machine.

    .venv/bin/python benchmarks/bench_scaling.py [--model DIR] [--backend auto|onnx|tensorflow]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from micro_app.core.bench import busy_frames, capture_to_overlay
from micro_app.core.engine import Engine
from micro_app.core.models import default_model_dir, load_package

SIZES = ((480, 640), (720, 1280), (1080, 1920))
CELLS = (1, 5, 20)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    folder = args.model or default_model_dir()
    engine = Engine(load_package(folder, keras=False), backend=args.backend)
    rows = []
    for size in SIZES:
        for cells in CELLS:
            r = capture_to_overlay(engine, busy_frames(args.frames, cells, size))
            rows.append({"frame": list(size), "cells_asked": cells, **r})
            lat, loc = r["latency_ms"], r["locate_ms"]
            if not args.json:
                print(
                    f"{size[1]}x{size[0]}, {r['cells_per_frame']:4.1f} cells: capture to overlay "
                    f"p50 {lat['p50']:6.1f} ms, p95 {lat['p95']:6.1f} ms; locating "
                    f"{loc['p50']:5.1f} ms"
                )
    if args.json:
        print(json.dumps({"device": engine.device, "rows": rows}))
    else:
        print(f"on {engine.device}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
