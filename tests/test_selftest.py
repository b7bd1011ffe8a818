"""The installation check lab staff (and the installer's build) run: ``micro-app selftest``
and ``MicroApp --selftest``; and the app's own files found the same way everywhere."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from micro_app.cli import main
from micro_app.core.errors import MicroAppError
from micro_app.resources import app_root, resource

pytestmark = pytest.mark.slow


def test_the_self_test_passes_here_and_says_each_check_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--selftest"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == "self-test passed"
    assert [line.split()[0] for line in lines[:-1]] == ["ok"] * 6
    assert any("model:" in line and "demo cells classified" in line for line in lines)


def test_a_missing_resource_fails_the_self_test_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "resources").mkdir()
    monkeypatch.setenv("MICRO_APP_HOME", str(tmp_path))  # an install without its files
    assert main(["selftest"]) == 1
    out = capsys.readouterr().out
    assert "FAILED   resources: the app's file resources/about.html is missing: reinstall" in out
    assert "FAILED   model: no model in models/" in out


def test_the_apps_files_are_found_from_source_bundle_and_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (app_root() / "models").is_dir() and resource("about.html").is_file()
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)  # PyInstaller's
    assert app_root() == tmp_path
    with pytest.raises(MicroAppError, match=r"resources/icons/x\.png is missing"):
        resource("icons/x.png")
