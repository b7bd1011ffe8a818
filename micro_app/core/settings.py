"""Typed application settings, saved as JSON in the user's config folder.

Every section validates its values; unknown keys are rejected. A settings file that cannot
be read is never overwritten silently: it is set aside as ``settings.json.bad-<time>``
(never over an earlier one) and the app starts on defaults, with a one-line warning.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from micro_app.core.atomic import atomic_write_json
from micro_app.core.engine import EngineParams
from micro_app.core.errors import SettingsError
from micro_app.core.locate import LocateParams
from micro_app.core.models.runtime.names import BACKENDS
from micro_app.core.paths import config_dir, data_dir, log_dir  # noqa: F401 (re-exported)
from micro_app.core.preprocess import PreprocessParams
from micro_app.core.slide import DEFAULT_WATCH
from micro_app.core.typed import known_keys_only

log = logging.getLogger("micro_app")
SETTINGS_FILE = "settings.json"


@dataclass(frozen=True)
class AppSettings:
    preprocess: PreprocessParams = field(default_factory=PreprocessParams)
    locate: LocateParams = field(default_factory=LocateParams)
    engine: EngineParams = field(default_factory=EngineParams)
    source: str = "auto"  # "auto" (first camera, else demo), "demo", "camera:N" or a path
    model_dir: str | None = None  # None: the shipped default model
    snapshot_dir: str | None = None
    objectives: dict[str, float] = field(default_factory=dict)  # objective name -> µm per px
    objective: str | None = None  # the objective in use; its scale overrides the estimate
    differential_target: int = 100
    # a warning shows when a watched class passes this share of the counted cells
    watch: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WATCH))
    # the model set up for each microscope ("camera | objective" -> package folder)
    microscopes: dict[str, str] = field(default_factory=dict)
    backend: str = "auto"  # where the model runs: auto (ONNX Runtime if possible), onnx, tensorflow

    def __post_init__(self) -> None:
        for name, value, kinds in (
            ("source", self.source, (str,)),
            ("model_dir", self.model_dir, (str, type(None))),
            ("snapshot_dir", self.snapshot_dir, (str, type(None))),
            ("objective", self.objective, (str, type(None))),
            ("objectives", self.objectives, (dict,)),
            ("watch", self.watch, (dict,)),
        ):
            if not isinstance(value, kinds):
                raise SettingsError(f"setting {name!r} has the wrong type: {value!r}")
        if self.differential_target not in (100, 200, 400):
            raise SettingsError(
                "differential target must be 100, 200 or 400 cells, "
                f"got {self.differential_target!r}"
            )
        if self.objective is not None and self.objective not in self.objectives:
            raise SettingsError(f"objective {self.objective!r} has no calibration")
        for label, share in self.watch.items():
            if not isinstance(share, (int, float)) or not 0 <= share <= 1:
                raise SettingsError(f"alert share for {label!r} must be 0..1, got {share!r}")
        for name, scale in self.objectives.items():
            if not isinstance(scale, (int, float)) or not 0 < scale < 100:
                raise SettingsError(f"objective {name!r} has an invalid µm per pixel: {scale!r}")
        if self.backend not in BACKENDS:
            raise SettingsError(
                f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}"
            )
        if not isinstance(self.microscopes, dict):
            raise SettingsError(
                f"microscopes must map a microscope to a model folder, got {self.microscopes!r}"
            )
        for scope, folder in self.microscopes.items():
            if not isinstance(scope, str) or not isinstance(folder, str) or not folder:
                raise SettingsError(f"microscope {scope!r} has no model folder: {folder!r}")

    def um_per_px(self) -> float | None:
        """The calibrated scale in use: the chosen objective's, else a fixed one, else None."""
        if self.objective is not None:
            return self.objectives[self.objective]
        return self.engine.um_per_px

    def to_dict(self) -> dict[str, Any]:
        return {
            "preprocess": self.preprocess.to_dict(),
            "locate": self.locate.to_dict(),
            "engine": {"threshold": self.engine.threshold, "um_per_px": self.engine.um_per_px},
            "source": self.source,
            "model_dir": self.model_dir,
            "snapshot_dir": self.snapshot_dir,
            "objectives": dict(self.objectives),
            "objective": self.objective,
            "differential_target": self.differential_target,
            "watch": dict(self.watch),
            "microscopes": dict(self.microscopes),
            "backend": self.backend,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AppSettings:
        d = known_keys_only(cls, data, "settings")
        try:
            if "preprocess" in d:
                d["preprocess"] = PreprocessParams.from_dict(d["preprocess"])
            if "locate" in d:
                d["locate"] = LocateParams.from_dict(d["locate"])
            if "engine" in d:
                d["engine"] = EngineParams(**d["engine"])
            return cls(**d)
        except TypeError as exc:
            raise SettingsError(f"invalid settings: {exc}") from exc

    def with_changes(self, **changes: Any) -> AppSettings:
        return replace(self, **changes)


def load_settings(folder: Path | None = None) -> AppSettings:
    path = (folder or config_dir()) / SETTINGS_FILE
    if not path.is_file():
        return AppSettings()
    try:
        return AppSettings.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except Exception as exc:  # any defect of a file a person may have edited: set aside
        bad = _aside(path)
        where = f"kept as {bad.name}" if bad is not None else "left in place (not movable)"
        log.warning(
            "settings file %s is invalid (%s): starting on defaults, the old file %s",
            path,
            str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__,
            where,
        )
        return AppSettings()


def _aside(path: Path) -> Path | None:
    """Move a broken settings file to ``settings.json.bad-<time>``, never over an earlier one."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        bad = path.with_name(f"{path.name}.bad-{stamp}" + (f"-{n}" if n else ""))
        if bad.exists():
            continue
        try:
            os.link(path, bad)  # fails instead of replacing
            path.unlink()
            return bad
        except FileExistsError:
            continue
        except OSError:
            try:
                os.replace(path, bad)
                return bad
            except OSError:
                return None
    return None


def save_settings(settings: AppSettings, folder: Path | None = None) -> Path:
    return atomic_write_json((folder or config_dir()) / SETTINGS_FILE, settings.to_dict())
