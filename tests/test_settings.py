"""Settings persist, validate, and a broken file is kept, not lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from micro_app.core.engine import EngineParams
from micro_app.core.errors import SettingsError
from micro_app.core.settings import SETTINGS_FILE, AppSettings, load_settings, save_settings


def test_round_trip(tmp_path: Path) -> None:
    s = AppSettings(
        source="camera:1", engine=EngineParams(threshold=0.7), objectives={"100x oil": 0.065}
    )
    save_settings(s, tmp_path)
    assert load_settings(tmp_path) == s


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    assert load_settings(tmp_path) == AppSettings()


def test_invalid_file_is_kept_and_defaults_used(tmp_path: Path) -> None:
    (tmp_path / SETTINGS_FILE).write_text('{"engine": {"threshold": 7}}')
    assert load_settings(tmp_path) == AppSettings()
    (bad,) = tmp_path.glob(SETTINGS_FILE + ".bad-*")  # set aside with the time in its name
    assert json.loads(bad.read_text()) == {"engine": {"threshold": 7}}


@pytest.mark.parametrize(
    "data",
    [
        {"colour": 1},
        {"engine": {"threshold": -0.1}},
        {"objectives": {"10x": 0}},
        {"engine": {"thresh": 0.5}},
    ],
)
def test_validation(data: dict[str, object]) -> None:
    with pytest.raises(SettingsError):
        AppSettings.from_dict(data)
