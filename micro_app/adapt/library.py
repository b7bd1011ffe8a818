"""The lab's own model versions: every adapted package, kept on this machine.

Each calibration or teaching round writes a new, complete package into the library
folder (``<user data>/models``); nothing is ever overwritten, so the user can go back to
any earlier version, or to the shipped default. A package's lineage is in its card:
``parent`` names the package it was derived from, and ``extra["adaptation"]`` records
what was done, on how many images and cells, when, and the before/after numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from micro_app.core.errors import ModelPackageError
from micro_app.core.models.card import CARD_FILE, ModelCard

KINDS = ("calibration", "teach")


class Cancelled(Exception):
    """The user stopped a calibration or teaching run; nothing was written."""


@dataclass
class NewVersion:
    """What a calibration or teaching round wrote: the package, its version and the
    record that went into its card (``extra["adaptation"]``)."""

    package: Path
    version: str
    report: dict[str, Any]


def library_dir() -> Path:
    from micro_app.core.paths import data_dir

    return data_dir() / "models"


@dataclass(frozen=True)
class Version:
    path: Path
    card: ModelCard

    @property
    def adaptation(self) -> dict[str, Any]:
        return dict(self.card.extra.get("adaptation") or {})

    def describe(self) -> str:
        """One line for lists: name, version, what was done, when."""
        what = adaptation_line(self.adaptation) or "as trained"
        when = (self.card.created or "")[:16].replace("T", " ")
        return f"{self.card.name} {self.card.version}: {what}, {when}"


def adaptation_line(a: dict[str, Any]) -> str | None:
    """What an adaptation record says, in a few words (None: not an adapted package)."""
    if a.get("kind") == "calibration":
        return f"calibrated on {a.get('cells', '?')} cells (no labels; accuracy unmeasured)"
    if a.get("kind") == "teach":
        b, f = a.get("before") or {}, a.get("after") or {}
        if not f.get("cells"):
            return f"taught {a.get('train_cells', '?')} labelled cells (not measured)"
        return (
            f"taught {a.get('train_cells', '?')} labelled cells; {f['cells']} held back: "
            f"{b.get('accuracy', 0):.0%} → {f.get('accuracy', 0):.0%} right"
        )
    return None


def list_versions(root: Path | None = None) -> list[Version]:
    """The packages in the library, oldest first; unreadable folders are skipped."""
    root = Path(root) if root is not None else library_dir()
    if not root.is_dir():
        return []
    out = []
    base = root.resolve()
    for folder in root.iterdir():
        if not folder.is_dir() or folder.name.startswith(".") or not (folder / CARD_FILE).is_file():
            continue
        if folder.is_symlink() or folder.resolve().parent != base:  # a link leading elsewhere
            continue
        try:
            out.append(Version(folder, ModelCard.read(folder)))
        except ModelPackageError:
            continue
    return sorted(out, key=lambda v: (v.card.created, v.path.name))


def parent_ref(folder: Path, card: ModelCard) -> str:
    """How a child card names its parent: name, version and the weights' sha256 prefix."""
    keras = card.weights.get("keras")
    digest = keras.sha256[:12] if keras else "?"
    return f"{card.name} {card.version} (sha256 {digest}, {Path(folder)})"


def derived_card(
    parent_folder: Path,
    parent: ModelCard,
    kind: str,
    adaptation: dict[str, Any],
    *,
    version: str,
    appearance: dict[str, Any] | None = None,
) -> ModelCard:
    """The card of a package derived from ``parent``: same classes, input and
    preprocessing; new version, date and lineage; no converted weights (they belong to
    the parent's weights). The parent's test metrics move under ``metrics["parent"]``:
    they were measured on the training data, not on this microscope. The parent's open-set
    check described the parent's features, which adaptation changes: the child gets it
    from ``refit_open_set`` (or goes without)."""
    if kind not in KINDS:
        raise ValueError(f"adaptation kind must be one of {KINDS}, got {kind!r}")
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    ref = parent_ref(parent_folder, parent)
    record = {"kind": kind, "date": now, "parent": ref, **adaptation}
    history = [*parent.extra.get("lineage", []), ref]
    # the parent's own 8-bit model and its check describe the parent's weights
    extra = {
        k: v
        for k, v in parent.extra.items()
        if k not in ("adaptation", "lineage", "open_set", "int8")
    }
    parent_metrics = parent.metrics.get("parent", {"name": parent.name, **parent.metrics})
    return replace(
        parent,
        version=version,
        created=now,
        parent=ref,
        weights={},
        metrics={"parent": parent_metrics},
        appearance=appearance if appearance is not None else parent.appearance,
        extra={**extra, "adaptation": record, "lineage": history},
    )


def next_version(parent: ModelCard, root: Path | None = None) -> tuple[str, Path]:
    """The next free version string and folder for a package derived from ``parent``:
    ``<base version>-adapt<N>`` in ``<root>/<name>-<base version>-adapt<N>``."""
    root = Path(root) if root is not None else library_dir()
    base = parent.version.split("-adapt")[0]
    pattern = re.compile(re.escape(f"{parent.name} {base}-adapt") + r"(\d+)$")
    taken = [
        int(m.group(1))
        for v in list_versions(root)
        if (m := pattern.match(f"{v.card.name} {v.card.version}"))
    ]
    n = max(taken, default=0) + 1
    while True:
        version = f"{base}-adapt{n}"
        folder = root / _safe(f"{parent.name}-{version}")
        if not folder.exists():
            return version, folder
        n += 1


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)
