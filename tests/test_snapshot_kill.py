"""Exports that survive: a process writing snapshots is killed at random moments; on the
next start every snapshot left under its final name is complete and parses, leftovers are
put in order, and nothing earlier is lost."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tifffile
from conftest import seq_of

from micro_app.core.export import tidy_snapshots
from micro_app.core.imageio import read_image_rgb

pytestmark = pytest.mark.slow

WRITER = """
import sys, time
import numpy as np
from micro_app.core.frame import Frame
from micro_app.core.geometry import Box
from micro_app.core.results import CellResult, FrameResult
from micro_app.core.session.sinks import FolderSink
from micro_app.core.session.state import LiveUpdate
from micro_app.core.slide import CountStatus
sink = FolderSink(sys.argv[1])
img = np.random.default_rng(0).integers(0, 255, (600, 800, 3), dtype=np.uint8)
cell = CellResult(Box(10, 10, 90, 90), Box(30, 30, 60, 60), "neutrophil", 0.9, {"neutrophil": 0.9})
result = FrameResult(0, 0.0, (600, 800), (cell,), 0.1, "estimated", 5.0)
update = LiveUpdate(Frame(img, 0, 0.0, "test"), result, (1,), (True,), ("neutrophil",),
                    CountStatus({"neutrophil": 1}, 1, 100, {"neutrophil": 100.0}))
print("ready", flush=True)
for i in range(20):
    sink.write(update, source={"kind": "test"}, extra={"i": i})
print("done", flush=True)
"""


def _check_complete(folder: Path) -> int:
    sidecars = sorted(folder.glob("*.json"))
    for sidecar in sidecars:
        doc = json.loads(sidecar.read_text())  # every final-named sidecar parses
        raw = folder / doc["files"]["raw"]
        annotated = folder / doc["files"]["annotated"]
        assert tifffile.imread(raw).shape == (600, 800, 3)
        assert read_image_rgb(annotated).shape == (600, 800, 3)
    for image in list(folder.glob("*.ome.tif")) + list(folder.glob("*_annotated.png")):
        stem = image.name.removesuffix(".ome.tif").removesuffix("_annotated.png")
        assert (folder / f"{stem}.json").is_file(), f"{image.name} has no sidecar"
    assert not list(folder.glob(".*.tmp"))
    return len(sidecars)


def test_snapshots_killed_at_random_moments_are_whole_or_put_aside(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    folder = tmp_path / "snaps"
    rng = random.Random(7)
    complete = 0
    for _ in range(8):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(folder)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 1.5))  # somewhere in the middle of the 20 snapshots
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        said = tidy_snapshots(folder)  # what the next start does
        assert all("\n" not in line for line in said)
        now = _check_complete(folder)
        assert now >= complete  # nothing earlier is lost
        complete = now
    assert complete > 0


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_snapshot_folder_that_cannot_be_written_is_one_message(tmp_path: Path) -> None:
    from micro_app.core.engine import Engine, EngineParams
    from micro_app.core.session import FolderSink, LiveSession
    from micro_app.core.sources.demo import DemoSource

    blocked = tmp_path / "not_a_folder"
    blocked.write_text("a file where the folder should be")
    session = LiveSession(
        DemoSource(rate=30.0), Engine(None, params=EngineParams()), sinks=[FolderSink(blocked)]
    )
    messages: list[str] = []
    session.events.error.connect(lambda e: messages.append(e.message))
    session.start()
    end = time.monotonic() + 20
    while session.latest_update() is None and time.monotonic() < end:
        time.sleep(0.05)
    for _ in range(2):  # written on the snapshot thread: the result is None, the run goes on
        asked = session.snapshot()
        assert asked is not None and asked.result(20) is None
    seq = seq_of(session.latest_update())
    while seq_of(session.latest_update()) < seq + 3 and time.monotonic() < end:
        time.sleep(0.05)
    session.stop()
    assert seq_of(session.latest_update()) >= seq + 3  # the session kept running
    assert len(messages) == 2 and all("snapshot not saved" in m for m in messages)
