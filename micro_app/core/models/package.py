"""Load and save model packages: ``card.json`` plus weights, checked against each other.

A package folder holds ``card.json`` and ``model.keras``, and optionally converted
weights beside it (``model.onnx``, ``model.tflite``, added by ``micro-app export``) and a
classical classifier head (``head.npz``: an SVM, k-NN, LDA or decision tree on the Keras
model's features, read without pickle). Loading verifies the sha256 of the weights, loads
the Keras file with ``safe_mode=True`` (a file cannot run code on load), and checks that
the weights' input shape and number of outputs match the card. TensorFlow is imported
only here, and only when a model is loaded.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from micro_app.core.atomic import atomic_write_json
from micro_app.core.confine import inside
from micro_app.core.errors import ModelPackageError
from micro_app.core.models.card import CARD_FILE, WEIGHT_FORMATS, ModelCard, WeightsFile
from micro_app.core.models.classical import ClassicalHead, load_head

KERAS_FILE = "model.keras"
HEAD_FILE = "head.npz"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class ModelPackage:
    """A validated package with its Keras model loaded."""

    path: Path
    card: ModelCard
    # keras.Model; with a classical head, the model that gives its features. None until
    # needed when the package was opened to run on ONNX Runtime (``keras_model()``).
    model: Any
    head: ClassicalHead | None = None

    @property
    def n_outputs(self) -> int:
        if self.head is not None:
            return len(self.head.classes)
        if self.model is None:
            return len(self.card.classes)
        return int(self.model.output_shape[-1])

    def keras_model(self) -> Any:
        """The Keras model, loaded (safely, checked against the card) on first use."""
        if self.model is None:
            self.model = _load_keras(self.path, self.card, self.head)
        return self.model


def default_model_dir() -> Path | None:
    """The shipped default model: the first package folder under ``models/`` with a card."""
    from micro_app.resources import models_dir

    root = models_dir()
    if not root.is_dir():
        return None
    for folder in sorted(root.iterdir()):
        if (folder / CARD_FILE).is_file():
            return folder
    return None


def verify_weights(folder: Path, card: ModelCard, fmt: str = "keras") -> Path:
    """Return the weights path after checking it exists and matches the card's sha256."""
    entry = card.weights.get(fmt)
    if entry is None:
        raise ModelPackageError(f"card of {folder} lists no {fmt} weights: re-export the model")
    path = inside(Path(folder), entry.file, f"the card's {fmt} weights")
    if not path.is_file():
        raise ModelPackageError(f"weights file {path} is missing: copy the whole package folder")
    digest = sha256_file(path)
    if digest != entry.sha256:
        raise ModelPackageError(
            f"weights {path.name} do not match the card (sha256 {digest[:12]}… expected "
            f"{entry.sha256[:12]}…): the file is corrupt or was replaced; re-copy the package"
        )
    return path


def load_package(folder: Path | str, *, keras: bool = True) -> ModelPackage:
    """Read the card and load the Keras model safely after verifying its sha256.
    ``keras=False``: the card (and a classical head) only; the model is loaded when first
    asked for, so a package run on ONNX Runtime never imports TensorFlow."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelPackageError(f"model folder {folder} does not exist: check the path")
    card = ModelCard.read(folder)
    head = None
    if "classical" in card.weights:
        head = load_head(verify_weights(folder, card, "classical"))
    model = _load_keras(folder, card, head) if keras else None
    return ModelPackage(path=folder, card=card, model=model, head=head)


def _load_keras(folder: Path, card: ModelCard, head: ClassicalHead | None) -> Any:
    weights = verify_weights(folder, card, "keras")
    keras = _keras()
    try:
        model = keras.saving.load_model(weights, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a bad archive
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelPackageError(
            f"cannot load {weights.name} ({first[:200]}): the file is corrupt or was made by "
            "an incompatible Keras; re-export the model"
        ) from exc
    check_model_matches_card(model, card, head)
    return model


def check_model_matches_card(
    model: Any, card: ModelCard, head: ClassicalHead | None = None
) -> None:
    shape = tuple(model.input_shape)
    if len(shape) != 4 or tuple(shape[1:3]) != tuple(card.input_size) or shape[3] != 3:
        raise ModelPackageError(
            f"the weights take input {shape[1:]} but the card says {list(card.input_size)}x3: "
            "the card does not belong to these weights"
        )
    n_out = int(model.output_shape[-1])
    n_cls = len(card.classes)
    if head is not None:
        if tuple(head.classes) != tuple(card.classes):
            raise ModelPackageError(
                f"the classical head's classes {list(head.classes)} differ from the card's "
                f"{list(card.classes)}: the card does not belong to this head"
            )
        if len(model.output_shape) != 2 or n_out != head.n_features:
            raise ModelPackageError(
                f"the Keras model gives {model.output_shape[1:]} features but the classical "
                f"head takes {head.n_features}: the head does not belong to these weights"
            )
        return
    if not (n_out == n_cls or (n_cls == 2 and n_out == 1)):
        raise ModelPackageError(
            f"the weights have {n_out} outputs but the card lists {n_cls} classes "
            f"{list(card.classes)}: the card does not belong to these weights"
        )


def save_package(
    model: Any,
    card: ModelCard,
    folder: Path | str,
    *,
    overwrite: bool = False,
    head: ClassicalHead | None = None,
    files: dict[str, Path] | None = None,
) -> Path:
    """Write ``model`` and ``card`` as a package; the folder appears complete or not at all.

    ``head``: a classical classifier on the model's features, saved as ``head.npz``.
    ``files``: more files to put in the package, ``{name in package: source path}``
    (the split, training curves, ...).
    """
    folder = Path(folder)
    if folder.exists() and not overwrite:
        raise ModelPackageError(f"{folder} already exists: choose a new output folder")
    check_model_matches_card(model, card, head)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        model.save(staging / KERAS_FILE)
        weights = dict(card.weights)
        weights["keras"] = WeightsFile(file=KERAS_FILE, sha256=sha256_file(staging / KERAS_FILE))
        if head is not None:
            head.save(staging / HEAD_FILE)
            weights["classical"] = WeightsFile(HEAD_FILE, sha256_file(staging / HEAD_FILE))
        for name, source in (files or {}).items():
            target = staging / name
            if target.resolve().parent != staging.resolve() or name in (CARD_FILE, KERAS_FILE):
                raise ModelPackageError(
                    f"cannot add {name!r} to a package: choose a plain file name"
                )
            shutil.copyfile(source, target)
        card = replace(card, weights=weights)
        atomic_write_json(staging / CARD_FILE, card.to_dict())
        if folder.exists():
            backup = folder.with_name(folder.name + ".old")
            shutil.rmtree(backup, ignore_errors=True)
            folder.rename(backup)
            staging.rename(folder)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def add_weights(
    folder: Path | str,
    fmt: str,
    source: Path,
    file_name: str,
    extra: tuple[str, Any] | None = None,
) -> ModelCard:
    """Put converted weights into a package and list them in its card with their sha256
    (and ``extra``: a ``(key, value)`` for the card's ``extra``, such as their check).

    The weights file is moved in first, then the card is replaced atomically, so a reader
    sees either the old card or the new one with a matching checksum.
    """
    folder = Path(folder)
    if fmt not in WEIGHT_FORMATS or fmt in ("keras", "classical"):
        raise ModelPackageError(f"cannot add weights of format {fmt!r}: choose onnx or tflite")
    card = ModelCard.read(folder)
    target = folder / file_name
    if target.resolve().parent != folder.resolve() or file_name in (CARD_FILE, KERAS_FILE):
        raise ModelPackageError(f"cannot write weights as {file_name!r}: choose a plain file name")
    tmp = folder / f".{file_name}.tmp"
    shutil.copyfile(source, tmp)
    tmp.replace(target)
    weights = dict(card.weights)
    weights[fmt] = WeightsFile(file=file_name, sha256=sha256_file(target))
    card = replace(card, weights=weights)
    if extra is not None:
        card = replace(card, extra={**card.extra, extra[0]: extra[1]})
    atomic_write_json(folder / CARD_FILE, card.to_dict())
    return card


def _keras() -> Any:
    try:
        import keras
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelPackageError(
            "TensorFlow/Keras is not installed: run pip install -e . in the app's environment"
        ) from exc
    return keras
