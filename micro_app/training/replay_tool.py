"""Give a package trained before replay sets existed one, from its stored training split:

python -m micro_app.training.replay_tool MODEL DATASET
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from micro_app.core.atomic import atomic_write_json
from micro_app.core.imageio import read_image_rgb
from micro_app.core.models.card import CARD_FILE, ModelCard
from micro_app.core.models.gradcam import resize_to_input
from micro_app.core.models.replay import (
    DEFAULT_PER_CLASS,
    REPLAY_FILE,
    ReplaySet,
    pick,
    replay_entry,
)
from micro_app.training.split import SPLIT_FILE, read_split


def add_replay_from_split(folder: Path, dataset: Path, per_class: int = DEFAULT_PER_CLASS) -> Path:
    """Give a package trained before replay sets existed one, from its stored training
    split (``split.json``) of ``dataset``. The weights are untouched; the card is replaced
    atomically after the replay file is in place."""
    folder = Path(folder)
    card = ModelCard.read(folder)
    entries = [e for e in read_split(folder / SPLIT_FILE)["images"] if e["split"] == "train"]
    labels = np.array([card.classes.index(e["label"]) for e in entries], int)
    chosen = pick(labels, len(card.classes), per_class)
    size = card.input_size
    imgs = [
        resize_to_input(read_image_rgb(Path(dataset) / entries[i]["path"]), size) for i in chosen
    ]
    replay = ReplaySet(np.stack(imgs), labels[chosen], card.classes)
    path = replay.save(folder / REPLAY_FILE)
    name = card.training_data.get("name", Path(dataset).name)
    extra = dict(card.extra, replay=replay_entry(replay, path, f"training split of {name}"))
    atomic_write_json(folder / CARD_FILE, replace(card, extra=extra).to_dict())
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="add a replay set to a model package")
    ap.add_argument("model", type=Path)
    ap.add_argument("dataset", type=Path, help="the dataset the package was trained on")
    ap.add_argument("--per-class", type=int, default=DEFAULT_PER_CLASS)
    args = ap.parse_args(argv)
    path = add_replay_from_split(args.model, args.dataset, args.per_class)
    print(f"{path}: {path.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
