"""Model versions: the shipped model and every adapted version on this machine; go back
to any of them. The details pane shows the card's lineage and the numbers of each step."""

from __future__ import annotations

import json
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
        if v is None:
            self.details.setPlainText("No model versions.")
            return
        card = v.card
        lines = [f"{card.name} {card.version}", f"folder: {v.path}", f"created: {card.created}"]
        if card.parent:
            lines.append(f"derived from: {card.parent}")
        for step in card.extra.get("lineage", []):
            lines.append(f"  lineage: {step}")
        a = v.adaptation
        if a:
            shown = {k: a[k] for k in a if k not in ("batchnorm_layers", "config", "parent")}
            lines.append(json.dumps(shown, indent=1, ensure_ascii=False))
        else:
            test = card.metrics.get("test", {})
            if "accuracy" in test:
                lines.append(
                    f"test accuracy on its training data's test split: {test['accuracy']:.3f}"
                )
        self.details.setPlainText("\n".join(lines))

    def _use(self) -> None:
        v = self.selected()
        if v is not None:
            self.use_model.emit(str(v.path))
            self.accept()


def _resolved(path: str) -> str:
    try:
        return str(Path(path).resolve())
    except OSError:
        return path
