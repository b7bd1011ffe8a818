"""Frame sources: the demo's drawn smear, file replay, cameras, and open_source spec parsing
(the demo's stage of real cells: test_demo_stage.py)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from micro_app.core.errors import SettingsError, SourceError, UnsupportedProperty
from micro_app.core.frame import Frame
from micro_app.core.sources import (
    WBC_KINDS,
    CameraInfo,
    DemoSource,
    FileSource,
    FrameSource,
    OpenCVCamera,
    camera_list,
    list_cameras,
    open_source,
)

# ---------------------------------------------------------------------- helpers


def read_n(src: FrameSource, n: int) -> list[Frame]:
    frames = []
    for _ in range(n):
        frame = src.read()
        if frame is None:
            break
        frames.append(frame)
    return frames


def purple_mask(rgb: np.ndarray) -> np.ndarray:
    """A plain HSV nucleus threshold: purple hue, saturated, not bright."""
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    return cv2.inRange(hsv, (115, 60, 0), (165, 255, 210)) > 0


@pytest.fixture
def demo() -> DemoSource:
    src = DemoSource(seed=1)
    src.open()
    return src


# ---------------------------------------------------------------------- demo


def test_demo_frames_are_rgb_uint8(demo: DemoSource) -> None:
    frames = read_n(demo, 3)
    assert [f.seq for f in frames] == [0, 1, 2]
    for f in frames:
        assert f.image.shape == (480, 640, 3) and f.image.dtype == np.uint8
        assert f.source == "demo (drawn smear)"
    # Background is pale pinkish cream: the brightest pixels are warm, red >= blue.
    img = frames[0].image.reshape(-1, 3).astype(int)
    bright = img[img.sum(axis=1) > np.percentile(img.sum(axis=1), 90)]
    assert bright[:, 0].mean() > 215 and bright[:, 0].mean() >= bright[:, 2].mean()
    assert isinstance(demo, FrameSource)


def test_demo_is_deterministic_for_a_seed() -> None:
    a, b, c = DemoSource(seed=5), DemoSource(seed=5), DemoSource(seed=6)
    for s in (a, b, c):
        s.open()
    fa, fb, fc = read_n(a, 4), read_n(b, 4), read_n(c, 4)
    for x, y in zip(fa, fb, strict=True):
        assert np.array_equal(x.image, y.image)
    assert a.last_truth == b.last_truth
    assert not np.array_equal(fa[0].image, fc[0].image)


def test_demo_drifts_a_few_pixels_per_frame(demo: DemoSource) -> None:
    frames = read_n(demo, 11)
    g0, g10 = (cv2.cvtColor(f.image, cv2.COLOR_RGB2GRAY).astype(np.float32) for f in frames[::10])
    (dx, dy), _ = cv2.phaseCorrelate(g0, g10)
    shift = float(np.hypot(dx, dy))
    assert 5 <= shift <= 40, f"moved {shift:.1f} px in 10 frames"


def test_demo_truth_boxes_hold_purple_nuclei() -> None:
    src = DemoSource(seed=2)
    src.open()
    boxes_seen = 0
    kinds: set[str] = set()
    for _ in range(10):
        frame = read_n(src, 4)[-1]  # last_truth describes the last frame read
        mask = purple_mask(frame.image)
        inside = np.zeros_like(mask)
        for box, kind in src.last_truth:
            assert 0 <= box.x0 < box.x1 <= 640 and 0 <= box.y0 < box.y1 <= 480
            assert kind in WBC_KINDS
            crop = mask[box.y0 : box.y1, box.x0 : box.x1]
            assert crop.sum() > 300, f"{kind} at {box} has too few purple pixels"
            inside[box.y0 : box.y1, box.x0 : box.x1] = True
            boxes_seen += 1
            kinds.add(kind)
        # Purple outside the boxes only comes from white cells mostly outside the frame,
        # so it lies within half a white cell (17 µm / 2 at 8 px/µm) of the edge.
        ys, xs = np.nonzero(mask & ~inside)
        edge = np.minimum.reduce([xs, ys, 639 - xs, 479 - ys]) if len(xs) else np.zeros(1)
        assert edge.max() < 70
    assert boxes_seen >= 5


def test_demo_sizes_follow_px_per_um() -> None:
    src = DemoSource(seed=3, px_per_um=6.0)
    src.open()
    sizes = []
    for _ in range(60):
        frame = src.read()
        assert frame is not None
        for box, _kind in src.last_truth:
            if box.x0 > 0 and box.y0 > 0 and box.x1 < 640 and box.y1 < 480:
                sizes.append(max(box.width, box.height) / 6.0)
    assert sizes, "no whole white cell in 60 frames"
    assert min(sizes) >= 9.0 and max(sizes) <= 18.5  # µm


def test_demo_properties() -> None:
    src = DemoSource(160, 120, seed=0, noise=0, focus_blur=0)
    src.open()
    base = read_n(src, 1)[0].image.astype(float).mean()
    src.set_property("exposure", 0.5)
    darker = read_n(src, 1)[0].image.astype(float).mean()
    assert darker < 0.6 * base
    props = src.properties()
    assert props["exposure"].value == 0.5 and props["exposure"].supported
    assert not props["auto_exposure"].supported
    with pytest.raises(UnsupportedProperty, match="auto_exposure"):
        src.set_property("auto_exposure", 1)
    with pytest.raises(SettingsError, match="99"):
        src.set_property("gain", 99)
    json.dumps(src.describe())


def test_demo_rate_paces_reads() -> None:
    src = DemoSource(160, 120, rate=50)
    src.open()
    start = time.monotonic()
    read_n(src, 6)  # five periods of 20 ms after the first frame
    assert time.monotonic() - start >= 0.05


def test_demo_rejects_bad_arguments() -> None:
    with pytest.raises(SettingsError, match="-3"):
        DemoSource(width=-3)
    with pytest.raises(SourceError, match="0"):
        DemoSource(rate=0)


# ---------------------------------------------------------------------- files


def write_rgb(path: Path, rgb: tuple[int, int, int], size: tuple[int, int] = (24, 32)) -> None:
    img = np.zeros((*size, 3), np.uint8)
    img[:] = rgb[::-1]  # cv2 writes BGR
    assert cv2.imwrite(str(path), img)


def test_single_image_once_or_looping(tmp_path: Path) -> None:
    path = tmp_path / "smear.png"
    write_rgb(path, (255, 0, 0))
    once = FileSource(path)
    once.open()
    frames = read_n(once, 5)
    assert len(frames) == 1 and len(once) == 1
    assert tuple(frames[0].image[0, 0]) == (255, 0, 0)  # RGB order
    assert once.current_path == path and frames[0].source == str(path)
    looping = FileSource(path, loop=True)
    looping.open()
    assert [f.seq for f in read_n(looping, 4)] == [0, 1, 2, 3]
    json.dumps(looping.describe())


def test_folder_natural_order_and_bad_file_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for i, name in enumerate(["img1.png", "img2.tif", "img10.jpg"]):
        write_rgb(tmp_path / name, (10 * (i + 1), 0, 0))
    (tmp_path / "img3.png").write_bytes(b"not an image")
    (tmp_path / "notes.txt").write_text("ignored")
    src = FileSource(tmp_path)
    assert len(src) == 4
    src.open()
    frames = read_n(src, 10)
    names = [Path(f.source).name for f in frames]
    assert names == ["img1.png", "img2.tif", "img10.jpg"]
    assert [f.seq for f in frames] == [0, 1, 2]
    assert [p.name for p in src.skipped] == ["img3.png"]
    assert "img3.png" in caplog.text
    looping = FileSource(tmp_path, loop=True)
    looping.open()
    assert len(read_n(looping, 7)) == 7


def test_video_replay_end_loop_and_rate(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 20.0, (64, 48))
    assert writer.isOpened()
    for i in range(10):
        img = np.zeros((48, 64, 3), np.uint8)
        img[:, :, 2] = 200  # red in BGR
        img[:4, :4] = i * 20
        writer.write(img)
    writer.release()

    once = FileSource(path)
    once.open()
    frames = read_n(once, 20)
    assert len(frames) == 10 and once.frame_count == 10
    assert frames[0].image.shape == (48, 64, 3)
    r, g, b = frames[0].image[24, 32]
    assert r > 150 and g < 60 and b < 60
    assert once.read() is None
    once.close()

    looping = FileSource(path, loop=True)
    looping.open()
    assert len(read_n(looping, 25)) == 25
    looping.close()

    realtime = FileSource(path, realtime=True)
    realtime.open()
    assert realtime.rate == pytest.approx(20.0)
    start = time.monotonic()
    read_n(realtime, 4)
    assert time.monotonic() - start >= 0.1  # three periods of 50 ms, loosely
    realtime.close()


def test_unreadable_paths_raise_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        FileSource(tmp_path / "missing.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="contains no images"):
        FileSource(empty)
    fake_png = tmp_path / "broken.png"
    fake_png.write_bytes(b"nope")
    src = FileSource(fake_png)
    src.open()
    with pytest.raises(SourceError, match=r"broken\.png"):
        src.read()
    fake_video = tmp_path / "broken.avi"
    fake_video.write_bytes(b"nope")
    with pytest.raises(SourceError, match=r"broken\.avi"):
        video = FileSource(fake_video)
        video.open()
        video.read()


# ---------------------------------------------------------------------- open_source


def test_open_source_specs(tmp_path: Path) -> None:
    demo = open_source("demo", rate=10)
    assert isinstance(demo, DemoSource) and demo.rate == 10 and demo.seed == 0
    seeded = open_source(" Demo:7 ")
    assert isinstance(seeded, DemoSource) and seeded.seed == 7
    cam = open_source("camera:2")
    assert isinstance(cam, OpenCVCamera) and cam.index == 2
    plain = open_source("1")
    assert isinstance(plain, OpenCVCamera) and plain.index == 1
    image = tmp_path / "a.png"
    write_rgb(image, (1, 2, 3))
    src = open_source(str(image))
    assert isinstance(src, FileSource) and src.loop
    assert isinstance(open_source(str(tmp_path), loop=False), FileSource)
    for bad, msg in [
        ("", "no source"),
        ("camera:x", "whole number"),
        ("demo:abc", "whole number"),
        (str(tmp_path / "nope"), "does not exist: check the path"),
    ]:
        with pytest.raises(SourceError, match=msg):
            open_source(bad)


# ---------------------------------------------------------------------- cameras


def test_missing_camera_raises_clear_source_error() -> None:
    cam = OpenCVCamera(99)  # constructing opens nothing
    assert not cam.properties()["exposure"].supported
    with pytest.raises(SourceError, match="camera 99 could not be opened"):
        cam.open()
    cam.close()
    with pytest.raises(SourceError, match="-1"):
        OpenCVCamera(-1)


def test_list_cameras_never_crashes() -> None:
    start = time.monotonic()
    cameras = list_cameras()
    assert isinstance(cameras, list)
    assert all(isinstance(c, CameraInfo) for c in cameras)
    assert time.monotonic() - start < 10


def test_list_cameras_falls_back_to_probing(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail() -> list[str]:
        raise subprocess.TimeoutExpired("powershell", 10)

    monkeypatch.setattr(camera_list, "_windows_names", fail)
    probed: list[int] = []

    def probe(count: int, api: int) -> list[CameraInfo]:
        probed.append(count)
        return []

    monkeypatch.setattr(camera_list, "_probe_indices", probe)
    assert list_cameras(max_probe=3, platform="win32") == []
    assert probed == [3]


def test_linux_names_from_sysfs(tmp_path: Path) -> None:
    for node, index, name in [("video0", 0, "USB Microscope"), ("video1", 1, "USB Microscope")]:
        (tmp_path / node).mkdir()
        (tmp_path / node / "index").write_text(f"{index}\n")
        (tmp_path / node / "name").write_text(f"{name}\n")
    assert camera_list._linux_cameras(tmp_path) == [(0, "USB Microscope")]
    assert camera_list._linux_cameras(tmp_path / "absent") is None
