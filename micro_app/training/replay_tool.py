"""Bring an older package's replay sample and appearance check up to date, from its stored
training split (its weights are untouched; the card is replaced atomically last):

    python -m micro_app.training.replay_tool MODEL DATASET [--extra DIR]

- the replay sample: ``--per-class`` crops of each class of the training split and, with
  ``--extra`` (the ``--extra-train`` folder it was trained with), as many of those,
  so that teaching remembers every source the model learned from;
- the unlike-the-training-images check, one source per training set (the dataset's
  training split with its validation split setting the threshold; the extra folder on its
  own), replacing the single population of packages trained before sources existed.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.core.appearance import Appearance, AppearanceStats, features_batch, fit_source
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
from micro_app.training.dataset import list_dataset
from micro_app.training.split import SPLIT_FILE, read_split


def _side(folder: Path, dataset: Path, card: ModelCard, side: str) -> tuple[np.ndarray, np.ndarray]:
    entries = [e for e in read_split(folder / SPLIT_FILE)["images"] if e["split"] == side]
    labels = np.array([card.classes.index(e["label"]) for e in entries], int)
    size = card.input_size
    images = [resize_to_input(read_image_rgb(Path(dataset) / e["path"]), size) for e in entries]
    return (np.stack(images) if images else np.zeros((0, *size, 3), np.uint8)), labels


def _folder(root: Path, card: ModelCard) -> tuple[np.ndarray, np.ndarray]:
    items = list_dataset(root)
    size = card.input_size
    images = [resize_to_input(read_image_rgb(Path(root) / rel), size) for rel, _ in items]
    labels = np.array([card.classes.index(label) for _, label in items], int)
    return np.stack(images), labels


def update_package(
    folder: Path,
    dataset: Path,
    extra: Path | None = None,
    per_class: int = DEFAULT_PER_CLASS,
) -> dict[str, Any]:
    folder = Path(folder)
    card = ModelCard.read(folder)
    train_x, train_y = _side(folder, dataset, card, "train")
    val_x, _ = _side(folder, dataset, card, "val")
    chosen = pick(train_y, len(card.classes), per_class)
    images, labels = [train_x[chosen]], [train_y[chosen]]
    name = str(card.training_data.get("name") or Path(dataset).name)
    appearance = Appearance.single(
        name,
        AppearanceStats.fit(features_batch(train_x), features_batch(val_x) if len(val_x) else None),
    )
    source = f"training split of {name}"
    if extra is not None:
        ex, ey = _folder(extra, card)
        keep = pick(ey, len(card.classes), per_class)
        images.append(ex[keep])
        labels.append(ey[keep])
        also = card.training_data.get("also_trained_on") or {}
        extra_name = str(also.get("name") or Path(extra).name)
        appearance = appearance.with_source(extra_name, fit_source(features_batch(ex)))
        source += f" and {len(keep)} cells of {extra_name}"
    replay = ReplaySet(np.concatenate(images), np.concatenate(labels), card.classes)
    path = replay.save(folder / REPLAY_FILE)
    more = dict(card.extra, replay=replay_entry(replay, path, source))
    new = replace(card, extra=more, appearance=appearance.to_dict())
    atomic_write_json(folder / CARD_FILE, new.to_dict())
    return {
        "replay": replay.counts(),
        "replay_mb": round(path.stat().st_size / 1e6, 2),
        "sources": list(appearance.names),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("model", type=Path)
    ap.add_argument("dataset", type=Path, help="the dataset the package was trained on")
    ap.add_argument("--extra", type=Path, help="the --extra-train folder it was trained with")
    ap.add_argument("--per-class", type=int, default=DEFAULT_PER_CLASS)
    args = ap.parse_args(argv)
    print(update_package(args.model, args.dataset, args.extra, args.per_class))
    return 0


if __name__ == "__main__":
    sys.exit(main())
