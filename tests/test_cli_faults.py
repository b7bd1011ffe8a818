"""The command-line faults of the live-run issue, each tried as a lab user meets it: a
network camera's address on ``--source``, Ctrl-C in ``live`` and ``classify``, a source that
failed to open remembered for the next start, a mistake said in more than one line; and the
one choice of source and model that the commands and the window share (``core.startup``)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import demo_fields

from micro_app.cli import build_parser, main
from micro_app.cli.parser import source_spec
from micro_app.core.settings import AppSettings, load_settings, save_settings
from micro_app.core.startup import (
    AUTO,
    choose_model,
    choose_source,
    microscope_key,
    source_to_remember,
)

ROOT = Path(__file__).resolve().parents[1]
NO_CAMERA = "camera:97"  # no computer here has 98 cameras


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, sub in (("CONFIG", "config"), ("LOG", "logs"), ("DATA", "data")):
        monkeypatch.setenv(f"MICRO_APP_{name}_DIR", str(tmp_path / sub))


@pytest.fixture
def no_shipped_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """No model to load: the run locates cells without classifying them (fast)."""
    monkeypatch.setattr("micro_app.core.startup.default_model_dir", lambda: None)


def _env(tmp_path: Path) -> dict[str, str]:
    return dict(
        os.environ,
        MICRO_APP_CONFIG_DIR=str(tmp_path / "config"),
        MICRO_APP_LOG_DIR=str(tmp_path / "logs"),
        MICRO_APP_DATA_DIR=str(tmp_path / "data"),
    )


def _run(tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "micro_app", *args]
    return subprocess.run(
        argv, capture_output=True, text=True, env=_env(tmp_path), cwd=tmp_path, timeout=timeout
    )


# -- --help stays light --------------------------------------------------------------------------
def test_help_imports_neither_tensorflow_opencv_nor_qt(tmp_path: Path) -> None:
    argv = [sys.executable, "-X", "importtime", "-m", "micro_app", "--help"]
    out = subprocess.run(argv, capture_output=True, text=True, env=_env(tmp_path), timeout=60)
    assert out.returncode == 0 and "classify" in out.stdout
    heavy = [
        line
        for line in out.stderr.splitlines()
        if any(name in line for name in ("tensorflow", "cv2", "PySide6", "keras"))
    ]
    assert not heavy, heavy[:3]


# -- 1. --source takes a URL -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec",
    [
        "http://127.0.0.1:8080/video.mjpg",
        "rtsp://user:pw@10.0.0.7:554//live",
        "camera:2",
        "demo",
        "slides/field 1.png",
    ],
)
def test_source_reaches_the_source_as_written(spec: str) -> None:
    for command in ("live", "window"):
        args = build_parser().parse_args([command, "--source", spec])
        assert source_spec(args) == spec


@pytest.mark.slow
def test_live_runs_on_a_network_camera_address(
    tmp_path: Path, no_shipped_model: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_camera_faults import MjpegServer

    server = MjpegServer()
    server.start()
    try:
        rc = main(["live", "--source", server.url, "--seconds", "2.5"])
    finally:
        server.stop()
    out = capsys.readouterr()
    assert rc == 0, out.err
    status = [line for line in out.out.splitlines() if line.startswith(server.url)]
    assert status and "(running) | 160x120" in status[-1]


# -- 2. Ctrl-C keeps what was done -----------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(sys.platform.startswith("win"), reason="SIGINT to a child is POSIX")
def test_ctrl_c_in_live_prints_the_differential_and_exits_130(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "micro_app", "live", "--demo"]
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
        cwd=tmp_path,
        # as a terminal starts it: a shell's background job would ignore SIGINT
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the first status line: the run is counting
    assert first.startswith("demo (running)"), first
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert out.splitlines()[-1].startswith("  ") and "differential:" in out
    assert err.splitlines() == [
        "micro-app: stopped (Ctrl-C): the differential above is what was counted so far"
    ]


@pytest.mark.slow
def test_ctrl_c_in_classify_writes_the_summary_so_far_and_exits_130(
    tmp_path: Path,
    no_shipped_model: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import micro_app.cli.classify as classify

    paths = demo_fields(tmp_path / "in", 5)
    read = classify.read_image_rgb
    calls = {"n": 0}

    def ctrl_c_at_the_third(path: Path) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return read(path)

    monkeypatch.setattr(classify, "read_image_rgb", ctrl_c_at_the_third)
    out = tmp_path / "out"
    assert main(["classify", str(tmp_path / "in"), "--out", str(out)]) == 130
    with open(out / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and {r["input"] for r in rows} == {str(p) for p in paths[:2]}
    assert sorted(p.name for p in out.glob("*.json")) == ["field_0.json", "field_1.json"]
    assert not list(out.glob(".*tmp*")), "no half-written file left"
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (
        f"micro-app: stopped (Ctrl-C) after 2 of 5 inputs: their results and summary.csv "
        f"are in {out}"
    )


# -- 3. a failed source is not remembered ----------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(
    ("saved", "asked", "remembered"),
    [
        ("demo", "{tmp}/gone/clip.mp4", "demo"),  # cannot even be built: the saved one stays
        (NO_CAMERA, None, AUTO),  # the saved camera fails on its capture thread: auto
    ],
)
def test_a_source_that_failed_to_open_is_not_remembered(
    qtbot: Any,
    tmp_path: Path,
    no_shipped_model: None,
    saved: str,
    asked: str | None,
    remembered: str,
) -> None:
    from micro_app.gui.app import open_window

    if Path("/dev/video97").exists():
        pytest.skip("this computer has a camera 97")
    save_settings(AppSettings(source=saved), tmp_path / "config")
    spec = asked.format(tmp=tmp_path) if asked else None
    run = open_window(source=spec, model=None, list_cameras=lambda: [])
    qtbot.addWidget(run.window)
    try:
        qtbot.waitUntil(lambda: run.window.settings.source == remembered, timeout=10000)
    finally:
        run.close()
    assert load_settings(tmp_path / "config").source == remembered


# -- the window shows before the cameras are listed ------------------------------------------------
@pytest.mark.slow
def test_the_window_shows_before_the_cameras_are_listed_then_opens_auto(
    qtbot: Any, tmp_path: Path, no_shipped_model: None
) -> None:
    from micro_app.gui.app import open_window

    release = threading.Event()

    def slow_os() -> list[Any]:  # PowerShell or system_profiler taking its time
        release.wait(10)
        return []

    run = open_window(source=AUTO, model=None, list_cameras=slow_os)
    qtbot.addWidget(run.window)
    combo = run.window.controls.source_combo
    try:
        assert run.window.isVisible() and not combo.isEnabled()
        assert combo.currentData() == AUTO and run.qt.session.status().source == "no source"
        release.set()
        qtbot.waitUntil(combo.isEnabled, timeout=10000)
        assert combo.currentData() == "demo" and run.qt.session.status().source == "demo"
    finally:
        release.set()
        run.close()
    assert not any(t.name == "list-cameras" for t in threading.enumerate())
    assert load_settings(tmp_path / "config").source == AUTO  # no camera today: not "demo"


# -- 4. each mistake is one line -------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["classify", "{tmp}/nonexistent", "--out", "{tmp}/out"],
            "micro-app: {tmp}/nonexistent does not exist: check the path",
        ),
        (
            ["live", "--source", "{tmp}/nonexistent", "--seconds", "2"],
            "micro-app: {tmp}/nonexistent does not exist: check the path",
        ),
        (
            ["live", "--source", NO_CAMERA, "--seconds", "3"],
            "micro-app: camera 97 could not be opened (",
        ),
    ],
)
def test_each_mistake_is_one_line_on_the_terminal(
    tmp_path: Path, args: list[str], line: str
) -> None:
    if Path("/dev/video97").exists():
        pytest.skip("this computer has a camera 97")
    out = _run(tmp_path, *(a.format(tmp=tmp_path) for a in args))
    said = (out.stdout + out.stderr).splitlines()
    assert len(said) == 1, said
    assert said[0].startswith(line.format(tmp=tmp_path)) and out.returncode == 2
    assert not (tmp_path / "out").exists()  # nothing written for a mistake
    if "camera" in line:  # the details are in the log file
        log = (tmp_path / "logs" / "micro_app.log").read_text()
        assert "capture from camera 97 failed" in log


# -- one choice of source and model for the commands and the window --------------------------------
class _Cam:
    def __init__(self, index: int) -> None:
        self.index = index


def test_the_source_is_the_one_asked_for_else_the_saved_else_the_first_camera() -> None:
    asked: list[int] = []

    def cams(*found: int) -> Any:
        def listing() -> list[_Cam]:
            asked.append(1)
            return [_Cam(i) for i in found]

        return listing

    saved = AppSettings(source="slides/a.png")
    assert choose_source("http://x/v.mjpg", saved, cams(0)) == "http://x/v.mjpg"
    assert choose_source(None, saved, cams(0)) == "slides/a.png"
    assert not asked, "cameras are listed only for auto"
    assert choose_source(None, AppSettings(source=AUTO), cams(2, 3)) == "camera:2"
    assert choose_source(AUTO, saved, cams()) == "demo"


def test_the_model_is_the_microscopes_else_the_saved_else_the_shipped(tmp_path: Path) -> None:
    ours, lab, shipped = (tmp_path / n for n in ("ours", "lab", "shipped"))
    for folder in (ours, lab, shipped):
        folder.mkdir()
        (folder / "card.json").write_text("{}")
    gone = str(tmp_path / "gone")
    settings = AppSettings(
        model_dir=str(lab),
        objective="40x",
        objectives={"40x": 0.25},
        microscopes={microscope_key("camera 1", "40x"): str(ours)},
    )
    default = {"shipped": lambda: shipped}
    assert choose_model(tmp_path / "x", settings, "camera 1", **default) == (tmp_path / "x", [])
    assert choose_model(None, settings, "camera 1", **default) == (ours, [])
    assert choose_model(None, settings, "camera 2", **default) == (lab, [])
    assert choose_model(None, settings, None, **default) == (lab, [])
    both_gone = AppSettings(model_dir=gone, microscopes={microscope_key("demo", None): gone})
    folder, notes = choose_model(None, both_gone, "demo", **default)
    assert folder == shipped
    assert notes == [f"the saved model {gone} is gone (moved or deleted): using the shipped model"]
    assert choose_model(None, AppSettings(), None, shipped=lambda: None) == (None, [])


def test_a_failed_source_gives_way_to_the_saved_one_else_auto() -> None:
    assert source_to_remember("camera:1", failed=False, saved="demo") == "camera:1"
    assert source_to_remember("camera:1", failed=True, saved="demo") == "demo"
    assert source_to_remember("camera:1", failed=True, saved="camera:1") == AUTO


@pytest.mark.slow
def test_live_uses_the_model_set_up_for_this_microscope(
    tmp_path: Path, tiny_package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    demo_fields(tmp_path / "slide", 2)
    key = microscope_key("slide", None)  # a folder replayed is named after the folder
    save_settings(AppSettings(microscopes={key: str(tiny_package)}), tmp_path / "config")
    rc = main(["live", "--source", str(tmp_path / "slide"), "--seconds", "2"])
    out = capsys.readouterr().out
    assert rc == 0 and "model tiny-colour" in out
    assert "red_cell" in out  # the differential lists that model's classes
