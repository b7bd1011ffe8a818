"""Another lab's fields: locate, crop and classify the BCCD fields whose white cell is typed.

    .venv/bin/python benchmarks/bench_bccd_classify.py --model models/<package> [--json]

Prints the share of typed fields whose located cell gets the right class, beside the
always-neutrophil baseline. BCCD is MIT-licensed; it was not used to train the model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from micro_app.core.engine import Engine
from micro_app.core.field_eval import load_typed_fields, score_fields
from micro_app.core.models import default_model_dir, load_package

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "bccd")
    ap.add_argument("--um-per-px", type=float, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    folder = args.model or default_model_dir()
    if folder is None:
        raise SystemExit("no model: pass --model DIR")
    from micro_app.core.engine import EngineParams

    engine = Engine(load_package(folder), params=EngineParams(um_per_px=args.um_per_px))
    score = score_fields(engine, load_typed_fields(args.data))
    if args.json:
        print(json.dumps(score.to_dict()))
        return 0
    d = score.to_dict()
    print(f"model {folder}: {d['fields']} typed fields {d['types']}")
    print(f"  located {d['located']}/{d['fields']}")
    print(
        f"  right class {d['accuracy']:.3f} (top class, threshold ignored: "
        f"{d['top_class_accuracy']:.3f}); always neutrophil {d['always_neutrophil']:.3f}"
    )
    for t, row in d["confusion"].items():
        print(f"  {t:>11}: {row}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
