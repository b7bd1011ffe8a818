"""A test run leaves the developer's own folders alone: every folder the app writes to
(settings, log, labelled cells and adapted models, snapshots) lies in the run's temporary
home (``conftest.TEST_HOME``), whether named by the app's variables or found by
platformdirs from HOME and the XDG variables."""

from __future__ import annotations

import logging
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import REAL_ENV, TEST_HOME

APP_VARIABLES = ("MICRO_APP_CONFIG_DIR", "MICRO_APP_LOG_DIR", "MICRO_APP_DATA_DIR")


def _folders() -> dict[str, Path]:
    from micro_app.core.paths import config_dir, data_dir, default_snapshot_dir, log_dir

    return {
        "settings": config_dir(),
        "log": log_dir(),
        "data": data_dir(),
        "snapshots": default_snapshot_dir(),
    }


def _inside_test_home(folders: dict[str, Path]) -> dict[str, Path]:
    """The folders that are not inside the test home (none, when all is well)."""
    return {k: p for k, p in folders.items() if TEST_HOME not in p.resolve().parents}


def test_every_user_folder_is_in_the_test_home() -> None:
    assert not _inside_test_home(_folders())


@pytest.mark.skipif(sys.platform == "win32", reason="platformdirs asks Windows, not HOME")
def test_without_the_app_variables_platformdirs_finds_the_test_home_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in APP_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert not _inside_test_home(_folders())


def _run(code: str, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip()


def test_a_log_line_lands_in_the_test_home_not_the_real_log() -> None:
    """A fresh process, as a command a test starts: its log file is the test home's, and
    the developer's own log never gets the line."""
    import os

    mark = f"test-run-{uuid.uuid4().hex}"
    code = (
        "import logging\n"
        "from micro_app.core.logs import setup_logging\n"
        "path = setup_logging()\n"
        f"logging.getLogger('micro_app').info('{mark}')\n"
        "print(path)\n"
    )
    written = Path(_run(code, dict(os.environ)))
    assert TEST_HOME in written.parents and mark in written.read_text(encoding="utf-8")
    real = Path(_run("from micro_app.core.paths import log_dir; print(log_dir())", REAL_ENV))
    assert TEST_HOME not in real.parents  # the developer's log folder, only read here
    real_log = real / "micro_app.log"
    if real_log.is_file():
        assert mark not in real_log.read_text(encoding="utf-8", errors="replace")


def test_this_process_logs_into_a_temporary_folder() -> None:
    """Whichever test configured the app's logger first, its file is not the real log."""
    from micro_app.core.logs import setup_logging

    path = setup_logging()
    real = Path(_run("from micro_app.core.paths import log_dir; print(log_dir())", REAL_ENV))
    assert path is None or real not in path.parents
    assert getattr(logging.getLogger("micro_app"), "_micro_app_file", None) == path
