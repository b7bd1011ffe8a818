"""The architecture table of docs/models.md from a folder of trained packages.

    .venv/bin/python benchmarks/compare_table.py OUT_DIR

Reads each package's card (test split metrics, parameters, epochs) and the
``<name>.bench.json`` that ``micro-app bench --model <pkg> --json`` wrote beside it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def row(pkg: Path) -> str | None:
    card_path = pkg / "card.json"
    if not card_path.is_file():
        return None
    card = json.loads(card_path.read_text())
    test = card["metrics"]["test"]
    training = card.get("extra", {}).get("training", {})
    weights = sum(p.stat().st_size for p in pkg.glob("*.keras"))
    bench_path = pkg.parent / f"{pkg.name}.bench.json"
    speed = json.loads(bench_path.read_text())["model_crops_per_s"] if bench_path.is_file() else {}
    h, w = card["input_size"]
    return (
        f"| {card['architecture']} | {h}x{w} | {training.get('epochs_run', '?')} "
        f"(best {training.get('best_epoch', '?')}) | {test['accuracy']:.3f} | "
        f"{test['macro_f1']:.3f} | {test['ece']:.3f} | {weights / 1e6:.2f} | "
        f"{speed.get('batch_1', 0):.0f} | {speed.get('batch_8', 0):.0f} | "
        f"{speed.get('batch_32', 0):.0f} |"
    )


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/micro_app_compare")
    print(
        "| architecture | input | epochs run | accuracy | macro F1 | ECE | weights MB | "
        "crops/s batch 1 | batch 8 | batch 32 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for pkg in sorted(p for p in out.iterdir() if p.is_dir()):
        line = row(pkg)
        if line:
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
