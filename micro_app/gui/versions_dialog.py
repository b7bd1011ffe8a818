"""Model versions: the shipped model and every adapted version on this machine; go back
to any of them. The details pane shows the card's lineage and the numbers of each step."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from micro_app.adapt.library import Version


class VersionsDialog(QDialog):
    use_model = Signal(str)

    def __init__(
        self, versions: list[Version], current: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Model versions")
        self.resize(820, 520)
        self.versions = versions
        col = QVBoxLayout(self)
        row = QHBoxLayout()
        self.list = QListWidget()
        self.list.setWordWrap(True)
        row.addWidget(self.list, 1)
        self.details = QTextBrowser()
        row.addWidget(self.details, 1)
        col.addLayout(row, 1)
        buttons = QHBoxLayout()
        self.use_button = QPushButton("Use this version")
        self.use_button.clicked.connect(self._use)
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        buttons.addWidget(self.use_button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        col.addLayout(buttons)
        here = _resolved(current)
        for i, v in enumerate(versions):
            in_use = _resolved(str(v.path)) == here
            item = QListWidgetItem(v.describe() + ("  (in use)" if in_use else ""))
            item.setData(Qt.ItemDataRole.UserRole, i)
            self.list.addItem(item)
            if in_use:
                self.list.setCurrentItem(item)
        self.list.currentItemChanged.connect(lambda *_: self._show())
        if self.list.currentItem() is None and self.list.count():
            self.list.setCurrentRow(self.list.count() - 1)
        self._show()

    def selected(self) -> Version | None:
        item = self.list.currentItem()
        return None if item is None else self.versions[item.data(Qt.ItemDataRole.UserRole)]

    def _show(self) -> None:
        v = self.selected()
        self.use_button.setEnabled(v is not None)
        self.details.setPlainText("\n".join(details(v)) if v else "No model versions.")

    def _use(self) -> None:
        v = self.selected()
        if v is not None:
            self.use_model.emit(str(v.path))
            self.accept()


def details(v: Version) -> list[str]:
    """What a lab user needs to pick a version: what was done, on what, with what result."""
    card = v.card
    lines = [f"{card.name} {card.version}", f"created {card.created}", f"folder {v.path}", ""]
    a = v.adaptation
    if a.get("kind") == "calibration":
        before = a.get("unlike_share_before")
        lines.append(
            f"Calibrated without labels on {a.get('cells')} cells of {a.get('images')} images."
        )
        if before is not None:
            lines.append(f"{before:.0%} of them looked unlike the parent's training images.")
        lines.append("Not validated: its accuracy on this microscope is unmeasured.")
    elif a.get("kind") == "teach":
        lines.append(
            f"Taught {a.get('train_cells')} labelled cells {a.get('train_per_class')}, "
            f"with {a.get('replay_cells')} training images mixed in."
        )
        b, f = a.get("before", {}), a.get("after", {})
        if f.get("cells"):
            lines.append(
                f"On {f['cells']} held-back lab cells: right class {b['accuracy']:.0%} → "
                f"{f['accuracy']:.0%} (top class {b['top_class_accuracy']:.0%} → "
                f"{f['top_class_accuracy']:.0%})."
            )
        else:
            lines.append("No held-back cells: not measured.")
        tb, ta = a.get("training_data_before", {}), a.get("training_data_after", {})
        if ta.get("cells"):
            lines.append(
                f"On {ta['cells']} held-back training images: {tb['accuracy']:.0%} → "
                f"{ta['accuracy']:.0%}."
            )
    else:
        test = card.metrics.get("test", {})
        data = card.training_data.get("name", "its training data")
        lines.append(f"As trained on {data}.")
        if "accuracy" in test:
            lines.append(f"Test split accuracy {test['accuracy']:.3f} (same lab as training).")
    if card.parent:
        lines += ["", "Derived from:", *[f"  {p}" for p in card.extra.get("lineage", [])]]
    return lines


def _resolved(path: str) -> str:
    try:
        return str(Path(path).resolve())
    except OSError:
        return path
