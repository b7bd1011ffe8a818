"""Re-fit the open-set check of a trained package on its own training split (from its
``split.json``) plus, optionally, the ``--extra-train`` folder it was trained with, exactly
as ``micro-app train`` now does at the end of a run. For packages trained before the
extra images were part of the fit.

    .venv/bin/python benchmarks/refit_open_set.py models/NAME --extra /tmp/bccd_train_crops
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from micro_app.core.models.card import ModelCard
from micro_app.training.dataset import list_dataset, read_samples
from micro_app.training.openset_fit import fit_open_set


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("package", type=Path)
    ap.add_argument("--extra", type=Path, help="the --extra-train folder of the run")
    args = ap.parse_args()
    card = ModelCard.read(args.package)
    split = json.loads((args.package / "split.json").read_text())
    root = Path(split["dataset"])
    size = (int(card.input_size[0]), int(card.input_size[1]))
    sides: dict[str, list[tuple[str, str]]] = {"train": [], "val": []}
    for item in split["images"]:
        if item["split"] in sides:
            sides[item["split"]].append((item["path"], item["label"]))
    _, train = read_samples(root, sides["train"], size)
    _, val = read_samples(root, sides["val"], size)
    assert train is not None and val is not None
    labels = np.array([card.classes.index(c) for _, c in sides["train"]])
    if args.extra is not None:
        items = list_dataset(args.extra)
        _, more = read_samples(args.extra, items, size)
        assert more is not None
        train = np.concatenate([train, more])
        labels = np.concatenate([labels, [card.classes.index(c) for _, c in items]])
    print(f"{len(train)} training cells, {len(val)} validation cells")
    fit_open_set(args.package, train, labels, val)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
