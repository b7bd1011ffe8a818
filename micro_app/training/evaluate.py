"""``micro-app evaluate MODEL DATASET``: honest metrics through the app's inference path.

The images are read and resized as the trainer did, then scored by ``Classifier`` (the
card's preprocessing and the compiled model call the live view uses). When DATASET is the
model's own training dataset (any of its files is in the stored ``split.json`` under the
same relative path with the same sha256), only the stored test split is scored. On any
other folder of class folders, every image whose class is in the card is scored, except
exact or near copies of training or validation images, which are left out and counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from micro_app.core.errors import InputError
from micro_app.core.models.classifier import Classifier
from micro_app.core.models.package import load_package
from micro_app.training.dataset import list_dataset, near_pairs, read_samples, sha256_of_files
from micro_app.training.metrics import classification_report
from micro_app.training.split import SPLIT_FILE, read_split

DEFAULT_THRESHOLD = 0.5


def predict_images(clf: Classifier, images: np.ndarray, batch: int = 64) -> np.ndarray:
    n_cls = len(clf.classes)
    out = [clf.predict(images[i : i + batch]) for i in range(0, len(images), batch)]
    return np.concatenate(out) if out else np.zeros((0, n_cls), np.float32)


def select_images(
    model_dir: Path, dataset: Path, classes: tuple[str, ...]
) -> tuple[list[tuple[str, str]], str, dict[str, Any], set[str]]:
    """The images to score, the mode, counts of what was left out, and the train/val hashes
    (to drop near copies after reading)."""
    folders = {p.name for p in Path(dataset).iterdir() if p.is_dir()} if dataset.is_dir() else set()
    wanted = [c for c in classes if c in folders]
    if not wanted:
        raise InputError(
            f"{dataset} has no folder for any class of the model {list(classes)}: "
            "choose a folder of class folders"
        )
    items = list_dataset(dataset, wanted) if len(wanted) > 1 else _one_class(dataset, wanted[0])
    split_path = Path(model_dir) / SPLIT_FILE
    left_out: dict[str, Any] = {"exact_copies_of_training_images": 0}
    if not split_path.is_file():
        return items, "all images (the model has no stored split)", left_out, set()
    split = read_split(split_path)
    seen = {e["sha256"] for e in split["images"] if e["split"] in ("train", "val")}
    test = {e["sha256"] for e in split["images"] if e["split"] == "test"}
    shas = sha256_of_files(dataset, [rel for rel, _ in items])
    train_hashes = {e["dhash"] for e in split["images"] if e["split"] in ("train", "val")}
    recorded = {(e["path"], e["sha256"]) for e in split["images"]}
    if any((rel, s) in recorded for (rel, _), s in zip(items, shas, strict=True)):
        # the same files at the same places: the training dataset (or a copy of it)
        keep = [it for it, s in zip(items, shas, strict=True) if s in test and s not in seen]
        left_out["not_in_stored_test_split"] = len(items) - len(keep)
        return keep, "stored test split of the training dataset", left_out, train_hashes
    keep = [it for it, s in zip(items, shas, strict=True) if s not in seen]
    left_out["exact_copies_of_training_images"] = len(items) - len(keep)
    return keep, "all images of the classes in the card", left_out, train_hashes


def _one_class(dataset: Path, name: str) -> list[tuple[str, str]]:
    from micro_app.core.imageio import list_images

    return [(f"{name}/{f.name}", name) for f in list_images(Path(dataset) / name)]


def evaluate(
    model_dir: Path | str,
    dataset: Path | str,
    *,
    backend: str = "keras",
    threshold: float | None = None,
    batch_size: int = 64,
    out: Path | None = None,
) -> dict[str, Any]:
    model_dir, dataset = Path(model_dir), Path(dataset)
    pkg = load_package(model_dir)
    card = pkg.card
    items, mode, left_out, train_hashes = select_images(model_dir, dataset, card.classes)
    samples, images = read_samples(dataset, items, card.input_size)
    assert images is not None
    if train_hashes and not mode.startswith("stored"):
        near = near_pairs([s.dhash for s in samples], sorted(train_hashes))
        drop = set(near[:, 0].tolist())
        left_out["near_copies_of_training_images"] = len(drop)
        keep = [i for i in range(len(samples)) if i not in drop]
        samples, images = [samples[i] for i in keep], images[keep]
    if not samples:
        raise InputError(f"no image of {dataset} is left to score ({left_out}): choose a test set")
    y = np.array([card.classes.index(s.label) for s in samples], int)
    clf = Classifier(pkg, backend=backend)
    probs = predict_images(clf, images, batch_size)
    t = threshold
    if t is None:
        t = card.unidentified_threshold if card.unidentified_threshold is not None else 0.5
    report = classification_report(y, probs, card.classes, t)
    report.update(
        {
            "model": f"{card.name} {card.version}",
            "model_dir": str(model_dir),
            "dataset": str(dataset),
            "mode": mode,
            "left_out": left_out,
            "backend": backend,
            "note": "no patient identifiers: a random split can put one patient's cells on "
            "both sides, so in-domain scores are optimistic",
            "scored_files": [s.path for s in samples],
        }
    )
    if out is not None:
        from micro_app.core.atomic import atomic_write_json
        from micro_app.training.plots import confusion_matrix_png

        out.mkdir(parents=True, exist_ok=True)
        png = confusion_matrix_png(
            report["confusion_matrix"],
            list(card.classes),
            out / "confusion_matrix.png",
            f"{card.name}: {dataset.name} ({report['n_images']} images)",
        )
        report["confusion_matrix_png"] = str(png)
        atomic_write_json(out / "metrics.json", report)
    return report


def summary_lines(report: dict[str, Any]) -> list[str]:
    lines = [
        f"{report['model']} on {report['dataset']} ({report['mode']}): "
        f"{report['n_images']} images, backend {report['backend']}",
        f"accuracy {report['accuracy']:.4f}  macro F1 {report['macro_f1']:.4f}  "
        f"weighted F1 {report['weighted_f1']:.4f}  ECE {report['ece']:.4f}"
        + (f"  macro AUC {report['roc_auc_macro']:.4f}" if report["roc_auc_macro"] else ""),
    ]
    u = report["unidentified"]
    lines.append(
        f"under threshold {u['threshold']:.2f}: {u['share_below']:.1%}; accuracy on the rest "
        f"{u['accuracy_on_rest']:.4f}"
    )
    lines.append(f"{'class':<16}{'prec':>7}{'recall':>7}{'spec':>7}{'F1':>7}{'AUC':>7}{'n':>6}")
    for name, m in report["per_class"].items():
        auc = f"{m['roc_auc']:.3f}" if m["roc_auc"] is not None else "-"
        lines.append(
            f"{name:<16}{m['precision']:>7.3f}{m['recall']:>7.3f}{m['specificity']:>7.3f}"
            f"{m['f1']:>7.3f}{auc:>7}{m['support']:>6}"
        )
    if any(report["left_out"].values()):
        lines.append(f"left out: {report['left_out']}")
    lines.append(f"note: {report['note']}")
    return lines
