"""Re-fit the open-set check of a trained package from its own validation split (read
from its ``split.json``), exactly as ``micro-app train`` does at the end of a run: for
packages trained before the check scored the energy of the logits.

    .venv/bin/python benchmarks/refit_open_set.py models/NAME
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from micro_app.core.models.card import ModelCard
from micro_app.training.dataset import read_samples
from micro_app.training.openset_fit import fit_open_set


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("package", type=Path)
    args = ap.parse_args()
    card = ModelCard.read(args.package)
    split = json.loads((args.package / "split.json").read_text())
    root = Path(split["dataset"])
    size = (int(card.input_size[0]), int(card.input_size[1]))
    val = [(e["path"], e["label"]) for e in split["images"] if e["split"] == "val"]
    _, images = read_samples(root, val, size)
    assert images is not None
    print(f"{len(val)} validation cells")
    if fit_open_set(args.package, images) is None:
        raise SystemExit(f"{args.package}: the model has no classifier layer to score")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
