"""The window's Model menu for adapting to this microscope: calibrate, teach, versions.

Kept apart from the main window: it owns the labelled-cell store and the model library,
remembers each cell a person labels in review, and opens the three dialogs. A chosen
version is loaded through the window's own model loader.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QMenu, QWidget

from micro_app.adapt.labelled import LabelledStore
from micro_app.adapt.library import Version, list_versions
from micro_app.adapt.setup import MicroscopeSetup
from micro_app.adapt.teach import TeachConfig
from micro_app.core.errors import MicroAppError, ModelPackageError
from micro_app.core.frame import Frame
from micro_app.core.models.card import ModelCard
from micro_app.core.models.package import ModelPackage, default_model_dir
from micro_app.core.session import LiveSession
from micro_app.gui.adapt_dialog import AdaptDialog
from micro_app.gui.calibrate_scope_dialog import CalibrateScopeDialog
from micro_app.gui.reviewed_cells import remember
from micro_app.gui.setup_dialog import SetupDialog
from micro_app.gui.teach_dialog import TeachDialog
from micro_app.gui.versions_dialog import VersionsDialog

log = logging.getLogger("micro_app")


class Host(Protocol):
    """What the dialogs need from the window that opens them."""

    model_path: str

    def show_error(self, message: str) -> None: ...

    def load_model(self, folder: str) -> None: ...

    def refresh_count(self) -> None: ...

    def microscope_key(self) -> str: ...

    def remember_microscope(self, folder: str) -> None: ...


class AdaptActions(QObject):
    def __init__(
        self,
        window: QWidget,
        session: LiveSession,
        store: LabelledStore,
        library_root: Path,
        teach_config: TeachConfig | None = None,
    ) -> None:
        super().__init__(window)
        self.teach_config = teach_config
        self.window = window
        self.host: Host = window  # type: ignore[assignment]
        self.session = session
        self.store = store
        self.library_root = Path(library_root)
        self.dialog: QDialog | None = None

    def install(self, menu: QMenu) -> None:
        for text, key, slot in (
            ("Set up this microscope…", "Ctrl+Shift+S", self.setup),
            ("Calibrate to this microscope…", "Ctrl+K", self.calibrate),
            ("Teach from corrections…", "Ctrl+T", self.teach),
            ("Model versions…", "Ctrl+Shift+M", self.versions),
        ):
            act = QAction(text, self.window)
            act.setShortcut(QKeySequence(key))
            act.triggered.connect(slot)
            menu.addAction(act)

    def _package(self) -> ModelPackage | None:
        package = self.session.model_package()
        if package is None or package.card.scope != "cell":
            self.host.show_error("Load a cell model first (Ctrl+M): adaptation starts from one")
            return None
        return package

    def _open(self, dialog: QDialog) -> QDialog:
        self.dialog = dialog
        if isinstance(dialog, AdaptDialog):  # its job's failure: the one relay too
            title = dialog.windowTitle()
            dialog.task.failed.connect(
                lambda message: self.session.report_error(title, MicroAppError(message))
            )
        dialog.use_model.connect(self.host.load_model)  # type: ignore[attr-defined]
        dialog.finished.connect(lambda _: self.host.refresh_count())
        dialog.open()
        return dialog

    # -- review: every label a person gives is kept for teaching ------------------------
    def remember_review(self, cell_id: int, label: str) -> None:
        info = self.session.model_info()
        if label not in info.classes:
            return
        try:
            remember(self.store, self.session, cell_id, label, f"{info.name} {info.version}")
        except (OSError, MicroAppError) as exc:
            self.host.show_error(
                f"the labelled cell was not saved for teaching ({exc}): check that "
                f"{self.store.root} is writable"
            )

    # -- the dialogs --------------------------------------------------------------------
    def setup(self) -> QDialog | None:
        """The guided set-up: collect, calibrate, confirm classes, teach, use; the result is
        remembered for this microscope."""
        package = self._package()
        if package is None:
            return None
        try:
            job = MicroscopeSetup(
                package,
                self.session.field_engine(),
                self.host.microscope_key(),
                store=self.store,
                library_root=self.library_root,
                teach_config=self.teach_config,
            )
        except MicroAppError as exc:
            self.host.show_error(str(exc))
            return None

        def frame() -> Frame | None:
            latest = self.session.latest_frame()
            return None if latest is None else latest[1]

        dialog = self._open(SetupDialog(job, frame, self.window))
        dialog.use_model.connect(self.host.remember_microscope)  # type: ignore[attr-defined]
        return dialog

    def calibrate(self) -> QDialog | None:
        package = self._package()
        if package is None:
            return None

        def frame() -> Frame | None:
            latest = self.session.latest_frame()
            return None if latest is None else latest[1]

        # its own engine: another microscope's fields must not enter the live scale median
        engine = self.session.field_engine()
        return self._open(
            CalibrateScopeDialog(package, engine, frame, self.library_root, self.window)
        )

    def teach(self) -> QDialog | None:
        package = self._package()
        if package is None:
            return None
        return self._open(
            TeachDialog(
                package,
                self.store,
                self.session,
                self.library_root,
                self.window,
                self.teach_config,
            )
        )

    def versions(self) -> QDialog:
        found: list[Version] = []
        for folder in (default_model_dir(), self.host.model_path or None):
            if folder is not None and all(Path(folder) != v.path for v in found):
                try:
                    found.append(Version(Path(folder), ModelCard.read(Path(folder))))
                except ModelPackageError as exc:
                    log.warning("model %s not listed: %s", folder, exc)
        known = {v.path.resolve() for v in found}
        found += [v for v in list_versions(self.library_root) if v.path.resolve() not in known]
        return self._open(VersionsDialog(found, self.host.model_path, self.window))
