"""The window's handlers for the slide: snapshots, the slide report, a new slide, the
differential's target. Each asks the session, which writes on its snapshot thread; the
window hears back when a file is saved (the gallery's thumbnail comes with it)."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from micro_app.core.export import SnapshotPaths
from micro_app.core.session import SavedSnapshot, SlideReport

if TYPE_CHECKING:
    from micro_app.core.session import LiveSession
    from micro_app.core.settings import AppSettings
    from micro_app.gui.gallery import Gallery
    from micro_app.gui.results_panel import ResultsPanel
    from micro_app.gui.review import CellReview


class SlideActions:
    settings: AppSettings
    session: LiveSession
    snapshot_dir: Path
    gallery: Gallery
    results: ResultsPanel
    review: CellReview

    def say(self, message: str, ms: int = 4000) -> None:
        raise NotImplementedError

    def snapshot(self) -> Future[SnapshotPaths | None] | None:
        """Ask for a snapshot; it is written on the session's snapshot thread and added to
        the gallery when saved (``_on_saved``)."""
        future = self.session.snapshot()
        if future is None and self.review.update is None:
            self.say("No classified frame yet", 3000)
        return future

    def _on_saved(self, saved: SavedSnapshot) -> None:
        self.gallery.add(saved.thumbnail, saved.paths.annotated)
        self.say(f"saved {saved.paths.sidecar.name}")

    def finish_slide(self) -> Future[dict[str, Path] | None]:
        """Ask for the slide report; written after the snapshots asked for before."""
        self.say("writing the slide report…", 8000)
        return self.session.finish_slide(self.snapshot_dir, self.settings.to_dict())

    def _on_finished(self, report: SlideReport) -> None:
        self.say(f"slide report: {report.files['report']}", 8000)

    def new_slide(self) -> None:
        self.session.new_slide()
        self.refresh_count()

    def refresh_count(self) -> None:
        self.results.show_count(self.session.count_status())

    def _target_changed(self, target: int) -> None:
        self.settings = replace(self.settings, differential_target=target)
        self.session.set_target(target)
        self.refresh_count()
