"""Messages that lead somewhere (issue 20): each line a lab user reads names what it means
and a command that works as typed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from conftest import wait_for

from micro_app.core.command import command_name
from micro_app.core.geometry import Box
from micro_app.core.results import CellResult, FrameResult

XVFB_PACKAGES = "xvfb libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1"


# -- the no-display line -------------------------------------------------------------------
def test_the_command_is_named_as_it_can_be_typed_again(tmp_path: Path) -> None:
    script = tmp_path / ".venv" / "bin" / "micro-app"
    script.parent.mkdir(parents=True)
    script.touch()
    nowhere: Any = lambda name: None  # noqa: E731
    assert command_name(str(script), which=nowhere, cwd=tmp_path) == ".venv/bin/micro-app"
    assert command_name(".venv/bin/micro-app", which=nowhere, cwd=tmp_path) == (
        ".venv/bin/micro-app"
    )
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    assert command_name(str(script), which=nowhere, cwd=elsewhere) == str(script)
    # on the PATH (an activated venv, the installed app): the bare name
    assert command_name(str(script), which=lambda name: str(script), cwd=elsewhere) == "micro-app"
    # another micro-app on the PATH is not this one
    other = elsewhere / "micro-app"
    other.touch()
    assert command_name(str(script), which=lambda name: str(other), cwd=tmp_path) == (
        ".venv/bin/micro-app"
    )
    python = tmp_path / ".venv" / "bin" / "python"
    main = "/x/micro_app/__main__.py"
    assert command_name(main, cwd=tmp_path, executable=str(python)) == (
        ".venv/bin/python -m micro_app"
    )


def test_the_no_display_line_names_xvfb_run_its_packages_and_the_real_path() -> None:
    """Run as the README installs it: ``.venv/bin/micro-app`` with the venv not on the PATH."""
    if not sys.platform.startswith("linux"):
        pytest.skip("display detection differs off Linux")
    script = Path(sys.executable).parent / "micro-app"
    if not script.is_file():
        pytest.skip(f"{script} is absent: the package is not installed in this environment")
    venv = script.parent.parent
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p) != script.parent
    )
    proc = subprocess.run(
        [str(script.relative_to(venv.parent)), "--demo"],
        cwd=venv.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    typed = f"{venv.name}/bin/micro-app"
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    line = lines[0]
    assert f"`xvfb-run -a {typed} --demo`" in line
    assert f"sudo apt install {XVFB_PACKAGES}" in line
    assert f"`{typed} classify PATH... --out DIR`" in line and f"`{typed} live --demo`" in line
    assert "`micro-app " not in line  # nothing that is not on the PATH


def test_the_readme_says_how_to_run_without_a_display() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### No display", 1)[1].split("\n### ", 1)[0]
    assert f"sudo apt install {XVFB_PACKAGES}" in section
    assert "xvfb-run -a .venv/bin/micro-app" in section


# -- the annotated image --------------------------------------------------------------------
def _result(unlike: float | None = None, scale_source: str = "estimated") -> FrameResult:
    cell = CellResult(
        box=Box(10, 10, 40, 40),
        nucleus_box=Box(18, 18, 32, 32),
        label="lymphocyte",
        confidence=0.91,
        probabilities={"lymphocyte": 0.91, "monocyte": 0.09},
    )
    return FrameResult(7, 0.0, (240, 320), (cell,), 0.25, scale_source, 1.0, unlike_share=unlike)


def _drawn_text(monkeypatch: pytest.MonkeyPatch, result: FrameResult) -> list[str]:
    from micro_app.core import overlay

    said: list[str] = []
    real = cv2.putText

    def put(img: np.ndarray, text: str, *args: Any, **kw: Any) -> Any:
        said.append(text)
        return real(img, text, *args, **kw)

    monkeypatch.setattr(overlay.cv2, "putText", put)
    overlay.draw_overlay(np.zeros((240, 320, 3), np.uint8), result)
    return said


def test_the_unlike_footer_says_it_in_words(monkeypatch: pytest.MonkeyPatch) -> None:
    said = _drawn_text(monkeypatch, _result(unlike=0.92))
    footer = [t for t in said if "training images" in t]
    assert footer == [
        "92% of the cells look unlike the model's training images: labels may be wrong"
    ]
    assert not any("input_check" in t for t in said)
    assert not any("training images" in t for t in _drawn_text(monkeypatch, _result(0.1)))


def test_the_footer_fits_a_small_frame() -> None:
    from micro_app.core.overlay import draw_overlay

    image = np.zeros((240, 320, 3), np.uint8)  # a QVGA camera
    out = draw_overlay(image, _result(unlike=0.92))
    foot = out[-30:]
    amber = np.all(foot == (255, 191, 0), axis=-1)
    assert amber.any() and not amber[:, -1].any()  # the amber band ends inside the image


@pytest.mark.parametrize("opencv_has_mu", [True, False], ids=["opencv5", "opencv4"])
def test_the_scale_bar_reads_micrometres_with_a_mu(
    opencv_has_mu: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bar's label is "10 µm", drawn with a µ whose tail goes below the line (where
    "10 um" has no ink): by OpenCV 5's fonts, or as a "u" with a tail where OpenCV 4's
    Hershey fonts would draw "?"."""
    from micro_app.core import overlay
    from micro_app.core.overlay import MICRO, draw_scale_bar, put_text, scale_bar_text

    if not opencv_has_mu:
        monkeypatch.setattr(overlay, "_draws_micro", lambda fs, th: False)
    elif not overlay._draws_micro(0.5, 1):
        pytest.skip("this OpenCV has no µ glyph")
    assert scale_bar_text(10.0) == "10 µm" and MICRO == "\u00b5"
    said = _drawn_text(monkeypatch, _result(scale_source="calibrated"))
    assert not any(t.endswith(" um") or "?" in t for t in said)
    assert ("10 µm" in said) is opencv_has_mu

    def ink_below_line(text: str) -> int:
        img = np.zeros((40, 120, 3), np.uint8)
        put_text(img, text, (5, 20), 0.5, (255, 255, 255), 1)
        return int((img[21:] > 127).sum())

    assert ink_below_line("10 um") == 0 and ink_below_line("10 µm") > 0
    img = np.zeros((240, 320, 3), np.uint8)
    draw_scale_bar(img, 0.25)
    assert img.any()


# -- the bench line --------------------------------------------------------------------------
def test_the_bench_line_says_what_was_compared_and_that_higher_is_better() -> None:
    from micro_app.cli.bench import report_lines

    stats = {"mean": 10.0, "p50": 10.0, "p95": 12.0, "max": 15.0}
    report = {
        "device": "CPU",
        "model": {"name": "m"},
        "frame_size": [480, 640],
        "pipeline": {"frames": 5, "frames_per_s": 20.0, "cells_per_s": 80.0, "latency_ms": stats},
        "model_crops_per_s": {"batch_32": 955.0},
        "busy_frame": {"cells_per_frame": 20.0},
        "latency_ms_p50": 50.0,
        "latency_ms_p95": 60.0,
        "locate_ms_per_frame": 8.0,
        "backend": "onnx_int8",
        "cells_per_s": 955.0,
        "naive_cells_per_s": 20.0,
        "speedup": 47.75,
        "peak_rss_mb": 500.0,
    }
    line = next(x for x in report_lines(report) if "model.predict" in x)
    assert "papers' way" not in line and not line.rstrip().endswith("x")
    assert "higher is better" in line and "one cell at a time" in line
    assert "955" in line and "20" in line and "47.8 times faster" in line


# -- the model box ---------------------------------------------------------------------------
def test_the_model_box_names_every_set_the_model_was_trained_on(qtbot) -> None:  # type: ignore[no-untyped-def]
    from micro_app.core.models.package import default_model_dir
    from micro_app.core.preprocess import PreprocessParams
    from micro_app.gui.controls import ControlsPanel

    card_file = default_model_dir() / "card.json"
    if not card_file.is_file():
        pytest.skip(f"{card_file} is absent")
    card = json.loads(card_file.read_text(encoding="utf-8"))
    panel = ControlsPanel(PreprocessParams(), 0.8)
    qtbot.addWidget(panel)
    panel.show_model(card, str(card_file.parent))
    text = panel.card_view.toPlainText()
    line = next(x for x in text.splitlines() if x.startswith("trained on:"))
    assert "PBC" in line and "(CC BY 4.0)" in line
    assert "BCCD" in line and "MIT" in line


# -- a snapshot of a replayed folder --------------------------------------------------------
def test_a_snapshot_from_a_folder_names_the_file_it_came_from(tmp_path: Path) -> None:
    from micro_app.core.engine import Engine, EngineParams
    from micro_app.core.session import FolderSink, LiveSession, SlideCounter
    from micro_app.core.sources import open_source

    folder = tmp_path / "fields"
    folder.mkdir()
    names = []
    for i in range(2):
        img = np.full((120, 160, 3), 220, np.uint8)
        cv2.circle(img, (40 + 60 * i, 60), 15, (140, 40, 130), -1)
        names.append(folder / f"field_{i}.png")
        cv2.imwrite(str(names[-1]), img)
    session = LiveSession(
        open_source(str(folder), rate=20.0, loop=True),
        Engine(None, params=EngineParams()),
        SlideCounter(),
        [FolderSink(tmp_path / "snaps")],
    )
    session.start()
    try:
        wait_for(lambda: session.latest_update() is not None)
        update = session.latest_update()[1]  # type: ignore[index]
        asked = session.snapshot(update)
        assert asked is not None
        paths = asked.result(20)
    finally:
        session.stop()
    assert paths is not None
    doc = json.loads(paths.sidecar.read_text())
    assert doc["input"] == {"path": update.frame.path, "frame_index": None}
    assert Path(doc["input"]["path"]) in names


def test_a_camera_frame_names_no_file() -> None:
    from micro_app.core.frame import Frame

    frame = Frame(np.zeros((4, 4, 3), np.uint8), 0, time.monotonic(), "camera 0")
    assert frame.input_record() is None


def test_a_video_frame_names_the_video_and_its_frame(tmp_path: Path) -> None:
    from micro_app.core.sources.file_source import FileSource

    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 5, (64, 48))
    if not writer.isOpened():
        pytest.skip("OpenCV cannot write an MJPG video here")
    for i in range(3):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    src = FileSource(video)
    src.open()
    try:
        frames = [src.read() for _ in range(2)]
    finally:
        src.close()
    assert [f.input_record() for f in frames if f is not None] == [
        {"path": str(video), "frame_index": 0},
        {"path": str(video), "frame_index": 1},
    ]


# -- train --help ----------------------------------------------------------------------------
def test_the_train_help_keeps_the_example_on_two_lines() -> None:
    from micro_app.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    text = sub.choices["train"].format_help()  # type: ignore[attr-defined]
    assert "--camera-augment \\\n      --extra-train other_lab_cells/ --out models/lite0\n" in text
