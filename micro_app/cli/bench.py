"""``micro-app bench``: speed and memory of the app's own inference path on this machine.

Speed targets are measured here, never asserted in tests. Frames come from the demo
source (rendered before timing) or from a folder of images; the window's own figures come
from the real window, run offscreen on the demo in a child process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.cli.engine import load_engine
from micro_app.core.engine import RESCALE_AFTER, Engine
from micro_app.core.imageio import expand_inputs, is_image, read_image_rgb
from micro_app.core.models.classifier import Classifier
from micro_app.core.models.int8 import compare
from micro_app.core.models.runtime import ONNX, ONNX_INT8
from micro_app.core.sources import DemoSource


def peak_rss_mb() -> float:
    """Peak resident memory of this process (MB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def load_frames(n: int, folder: Path | None = None) -> list[np.ndarray]:
    if folder is not None:
        paths = [p for p in expand_inputs([folder]) if is_image(p)][:n]
        return [read_image_rgb(p) for p in paths]
    src = DemoSource(seed=0)
    src.open()
    try:
        frames = [f.image for f in (src.read() for _ in range(n)) if f is not None]
    finally:
        src.close()
    return frames


def _stats(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {
        "mean": float(a.mean()),
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "max": float(a.max()),
    }


def bench_engine(engine: Engine, frames: list[np.ndarray], warmup: int = 3) -> dict[str, Any]:
    """Whole pipeline per frame: locate, crop, one batched model call."""
    for img in frames[:warmup]:
        engine.process(img)
    ms: list[float] = []
    cells = 0
    t0 = time.perf_counter()
    for img in frames:
        t = time.perf_counter()
        cells += len(engine.process(img).cells)
        ms.append((time.perf_counter() - t) * 1000)
    wall = time.perf_counter() - t0
    return {
        "frames": len(frames),
        "cells": cells,
        "frames_per_s": len(frames) / wall,
        "cells_per_s": cells / wall,
        "latency_ms": _stats(ms),
    }


def bench_classifier(
    clf: Classifier | None, batch_sizes: tuple[int, ...] = (1, 8, 32), seconds: float = 2.0
) -> dict[str, float]:
    """Crops per second through the model alone (card preprocessing + compiled call)."""
    if clf is None:
        return {}
    h, w = clf.card.input_size
    rng = np.random.default_rng(0)
    out: dict[str, float] = {}
    for bs in batch_sizes:
        batch = rng.integers(0, 255, (bs, h, w, 3), dtype=np.uint8)
        clf.predict(batch)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            clf.predict(batch)
            n += bs
        out[f"batch_{bs}"] = n / (time.perf_counter() - t0)
    return out


def fp32_beside(engine: Engine, seconds: float = 2.0) -> dict[str, Any]:
    """When the live path runs the 8-bit model: the same package's FP32 ONNX weights on the
    same batches in the same run (crops/s), and how often the two give the same class on
    the package's own cells (its replay sample; random crops when it has none)."""
    clf = engine.classifier
    if clf is None or clf.backend != ONNX_INT8:
        return {}
    from micro_app.core.models.replay import load_replay

    fp32 = Classifier(clf.package, ONNX)
    speed = bench_classifier(fp32, (1, 8, 32), seconds)
    replay = load_replay(clf.package.path, clf.card)
    if replay is not None:
        cells, source = replay.images, f"{len(replay)} replay cells of the package"
    else:
        h, w = clf.card.input_size
        cells = np.random.default_rng(0).integers(0, 255, (64, h, w, 3), dtype=np.uint8)
        source = "64 random crops"
    live = np.concatenate([clf.predict(cells[i : i + 32]) for i in range(0, len(cells), 32)])
    ref = np.concatenate([fp32.predict(cells[i : i + 32]) for i in range(0, len(cells), 32)])
    agree, diff = compare(ref, live)
    return {
        "cells_per_s_fp32": max(speed.values()),
        "model_crops_per_s_fp32": speed,
        "int8_agreement": agree,
        "int8_max_probability_difference": diff,
        "int8_checked_on": source,
    }


def busy_frames(n: int, cells: int = 20, size: tuple[int, int] = (1080, 1920)) -> list[np.ndarray]:
    """``n`` demo frames of ``size`` (height, width) with about ``cells`` white cells each:
    the live view's worst case on a 1080p camera."""
    h, w = size
    src = DemoSource(width=w, height=h, seed=1, wbc_per_field=cells)  # white cells per frame
    src.open()
    try:
        return [f.image for f in (src.read() for _ in range(n)) if f is not None]
    finally:
        src.close()


def capture_to_overlay(engine: Engine, frames: list[np.ndarray]) -> dict[str, Any]:
    """Per frame: locate, crop, classify, draw the overlay (what a frame costs from the
    camera to the screen, without the display itself); and locating alone."""
    from micro_app.core.locate import locate_cells
    from micro_app.core.overlay import draw_overlay

    # warmed as a live run is after its first quarter second: the smoothed scale has the
    # estimates it re-measures only every fifth frame from then on
    for img in frames[:RESCALE_AFTER]:
        draw_overlay(img, engine.process(img))
    total, locate, cells = [], [], []
    for img in frames:
        t = time.perf_counter()
        result = engine.process(img)
        draw_overlay(img, result)
        total.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        locate_cells(img, engine.preprocess, engine.locate, result.um_per_px)
        locate.append((time.perf_counter() - t) * 1000)
        cells.append(len(result.cells))
    return {
        "frame": list(frames[0].shape[:2]),
        "cells_per_frame": float(np.mean(cells)),
        "latency_ms": _stats(total),
        "locate_ms": _stats(locate),
    }


def naive_cells_per_s(engine: Engine, seconds: float = 4.0) -> float | None:
    """The seed papers' way: Keras ``model.predict`` on one crop at a time (with the card's
    preprocessing); the app's batched path is compared with it."""
    clf = engine.classifier
    if clf is None or clf.package.head is not None:
        return None
    from micro_app.core.models.classifier import prepare_batch

    model = clf.package.keras_model()
    h, w = clf.card.input_size
    crop = np.random.default_rng(0).integers(0, 255, (1, h, w, 3), dtype=np.uint8)
    model.predict(prepare_batch(crop, clf.card), verbose=0)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        model.predict(prepare_batch(crop, clf.card), verbose=0)
        n += 1
    return n / (time.perf_counter() - t0)


def run_bench(engine: Engine, n_frames: int = 100, folder: Path | None = None) -> dict[str, Any]:
    frames = load_frames(n_frames, folder)
    if not frames:
        raise ValueError(f"no images to benchmark in {folder}")
    crops = bench_classifier(engine.classifier, batch_sizes=(1, 8, 32))
    fp32 = fp32_beside(engine)
    busy = capture_to_overlay(engine, busy_frames(max(10, n_frames // 4)))
    naive = naive_cells_per_s(engine)
    best = max(crops.values(), default=0.0)
    clf = engine.classifier
    return {
        "backend": clf.backend if clf else "none",
        "device": engine.device,
        "model": clf.card.summary() if clf else None,
        "cells_per_s": best,
        "naive_cells_per_s": naive,
        "speedup": best / naive if naive else None,
        "latency_ms_p50": busy["latency_ms"]["p50"],
        "latency_ms_p95": busy["latency_ms"]["p95"],
        "locate_ms_per_frame": busy["locate_ms"]["p50"],
        "busy_frame": busy,
        "frame_size": list(frames[0].shape[:2]),
        "pipeline": bench_engine(engine, frames),
        "model_crops_per_s": crops,
        **fp32,
        "peak_rss_mb": peak_rss_mb(),
    }


def cmd_bench(args: argparse.Namespace) -> int:
    # the live view's engine (the scale smoothed over frames), as the window runs it
    engine, _ = load_engine(args.model, None, None, live=True, backend=args.backend)
    report = run_bench(engine, args.frames, args.images)
    report.update(window_bench(args.model, args.backend))
    if args.json:
        print(json.dumps(report))
        return 0
    for line in report_lines(report):
        print(line)
    return 0


def report_lines(report: dict[str, Any]) -> list[str]:
    pipe = report["pipeline"]
    lat = pipe["latency_ms"]
    model = report["model"]
    lines = [
        f"device {report['device']}, model {model['name'] if model else 'none'}, "
        f"frames {report['frame_size'][1]}x{report['frame_size'][0]}",
        f"pipeline: {pipe['frames_per_s']:.1f} frames/s, {pipe['cells_per_s']:.1f} cells/s, "
        f"latency mean {lat['mean']:.1f} ms, p95 {lat['p95']:.1f} ms ({pipe['frames']} frames)",
    ]
    lines += [f"model alone, {k}: {v:.0f} crops/s" for k, v in report["model_crops_per_s"].items()]
    if report.get("cells_per_s_fp32"):
        lines.append(
            f"8-bit model {report['cells_per_s']:.0f} cells/s against FP32 "
            f"{report['cells_per_s_fp32']:.0f} in this run "
            f"({report['cells_per_s'] / report['cells_per_s_fp32']:.2f}x); same class on "
            f"{report['int8_agreement']:.1%} of {report['int8_checked_on']}, probabilities "
            f"within {report['int8_max_probability_difference']:.2f}"
        )
    lines.append(
        f"1080p frame with {report['busy_frame']['cells_per_frame']:.0f} cells: capture to "
        f"overlay {report['latency_ms_p50']:.0f} ms p50, {report['latency_ms_p95']:.0f} ms p95 "
        f"(locating {report['locate_ms_per_frame']:.1f} ms)"
    )
    if report.get("naive_cells_per_s"):
        lines.append(
            f"cells classified per second (higher is better): {report['cells_per_s']:.0f} "
            f"as the app does it ({report['backend']}, many cells per call), "
            f"{report['naive_cells_per_s']:.0f} one cell at a time with Keras model.predict "
            f"(as the published methods did): the app is {report['speedup']:.1f} times faster"
        )
    if report.get("first_frame_s") is not None:
        fi = report["frame_interval_ms"]
        lines.append(
            f"window: first classified cell {report['first_frame_s']:.2f} s after launch; "
            f"display {report['display_fps']:.1f} fps, frame interval p50 {fi['p50']:.0f} ms, "
            f"p95 {fi['p95']:.0f} ms, max {fi['max']:.0f} ms while inference ran"
        )
    lines.append(f"peak memory {report['peak_rss_mb']:.0f} MB")
    return lines


def window_bench(model: Path | None, backend: str | None, seconds: float = 12.0) -> dict[str, Any]:
    """Start the real window offscreen on the demo for ``seconds`` and read what it measured
    (launch to the first classified cell, frame intervals); {} when it cannot run."""
    out = Path(tempfile.mkdtemp(prefix="micro_app_bench_")) / "window.json"
    argv = [sys.executable, "-m", "micro_app", "--demo", "--quit-after", str(seconds)]
    if model is not None:
        argv += ["--model", str(model)]
    if backend is not None:
        argv += ["--backend", backend]
    env = dict(  # its own settings, logs and data: the user's stay untouched
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        MICRO_APP_BENCH_OUT=str(out),
        MICRO_APP_CONFIG_DIR=str(out.parent / "config"),
        MICRO_APP_LOG_DIR=str(out.parent / "log"),
        MICRO_APP_DATA_DIR=str(out.parent / "data"),
    )
    try:
        subprocess.run(argv, env=env, capture_output=True, timeout=seconds + 120, check=False)
        return dict(json.loads(out.read_text()))
    except (OSError, ValueError, subprocess.SubprocessError):
        return {}
