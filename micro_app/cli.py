"""The ``micro-app`` command. Heavy modules (TensorFlow, OpenCV, Qt) load inside the
subcommands, so ``micro-app --help`` answers at once."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from micro_app import __version__

# parsers only: neither imports TensorFlow, OpenCV or Qt
from micro_app.adapt import commands as adapt_commands
from micro_app.training import commands as training_commands

EPILOG = """\
examples:
  micro-app                                   the live window (camera, else the demo smear)
  micro-app --demo --screenshot shot.png --quit-after 5
  micro-app live --demo --seconds 10          run the live pipeline on the demo smear
  micro-app classify field.jpg slides/ --out results/
  micro-app cameras                           list the cameras this computer sees
  micro-app adapt models/lite0_pbc_bccd fields/ --out models/ours   calibrate to this microscope
"""


COMMANDS = {"window", "live", "classify", "cameras", "bench", "selftest"}
ALL_COMMANDS = COMMANDS | training_commands.COMMANDS | adapt_commands.COMMANDS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="micro-app",
        description="Find and classify white blood cells in microscope camera images.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"micro-app {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    win = sub.add_parser("window", help="the live window (the default when no command is given)")
    _add_source_args(win)
    win.add_argument("--model", type=Path, help="model package folder (default: shipped model)")
    _add_backend_arg(win)
    win.add_argument("--screenshot", type=Path, metavar="FILE", help="save a picture of the window")
    win.add_argument("--quit-after", type=float, metavar="SECONDS", help="close after this long")

    live = sub.add_parser("live", help="run the live pipeline in the terminal (no window)")
    _add_source_args(live)
    live.add_argument("--model", type=Path, help="model package folder (default: shipped model)")
    _add_backend_arg(live)
    live.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    live.add_argument("--out", type=Path, help="folder for snapshots")
    live.add_argument(
        "--snapshot-every", type=float, metavar="S", help="write a snapshot every S seconds"
    )
    live.add_argument(
        "--threshold", type=float, help="confidence below which a cell is 'unidentified'"
    )
    live.add_argument(
        "--um-per-px", type=float, help="calibrated scale; default: estimated from red cells"
    )

    cls = sub.add_parser(
        "classify", help="classify images, folders and videos; write JSON, PNG, CSV"
    )
    cls.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    cls.add_argument("--model", type=Path, help="model package folder (default: shipped model)")
    _add_backend_arg(cls)
    cls.add_argument("--out", type=Path, required=True, help="output folder")
    cls.add_argument(
        "--threshold", type=float, help="confidence below which a cell is 'unidentified'"
    )
    cls.add_argument(
        "--um-per-px", type=float, help="calibrated scale; default: estimated from red cells"
    )
    cls.add_argument(
        "--video-every",
        type=float,
        default=1.0,
        metavar="S",
        help="classify one video frame every S seconds (default 1; 0 = every frame)",
    )

    sub.add_parser("cameras", help="list the cameras this computer sees")
    sub.add_parser(
        "selftest", help="check that the model, Qt, cameras and snapshots work here (exit 0)"
    )

    bench = sub.add_parser("bench", help="measure speed and memory of the inference path")
    bench.add_argument("--model", type=Path, help="model package folder (default: shipped model)")
    _add_backend_arg(bench)
    bench.add_argument("--frames", type=int, default=100, help="frames to time (default 100)")
    bench.add_argument("--images", type=Path, help="folder of images instead of the demo smear")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    training_commands.register(sub)
    adapt_commands.register(sub)
    return p


def _add_backend_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backend",
        # runtime.names.BACKENDS, spelled out: importing it would load OpenCV on every parse
        choices=["auto", "onnx", "onnx_int8", "tensorflow"],
        help="where the model runs: auto (ONNX Runtime when the package has ONNX weights: "
        "8-bit on a computer without a GPU, FP32 with one; else TensorFlow), onnx (FP32), "
        "onnx_int8 (8-bit) or tensorflow (default: the settings', auto)",
    )


def _add_source_args(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--demo", action="store_true", help="use the built-in synthetic smear")
    g.add_argument("--source", type=Path, help="image, folder of images or video to replay")
    g.add_argument("--camera", type=int, help="camera index (see micro-app cameras)")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--selftest"]:  # the installed app's spelling: MicroApp --selftest
        argv = ["selftest", *argv[1:]]
    if not argv or argv[0] not in ALL_COMMANDS | {
        "-h",
        "--help",
        "--version",
    }:
        argv = ["window", *argv]  # no subcommand: the window on the saved or first source
    args = build_parser().parse_args(argv)
    from micro_app.core.errors import MicroAppError
    from micro_app.core.logs import setup_logging

    setup_logging(console=True)
    command = args.command
    try:
        if command == "classify":
            return cmd_classify(args)
        if command == "cameras":
            return cmd_cameras()
        if command == "selftest":
            from micro_app.selftest import run

            return run()
        if command in training_commands.COMMANDS:
            return training_commands.run(args)
        if command in adapt_commands.COMMANDS:
            return adapt_commands.run(args)
        if command == "bench":
            return cmd_bench(args)
        if command == "window":
            return cmd_window(args)
        return cmd_live(args)
    except MicroAppError as exc:
        print(f"micro-app: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def load_engine(
    model: Path | None,
    threshold: float | None,
    um_per_px: float | None,
    *,
    live: bool = False,
    backend: str | None = None,
) -> Any:
    """The engine with the chosen model, the saved one, or the shipped default, on the
    chosen backend (default: the settings', ``auto``)."""
    from micro_app.core.engine import Engine, EngineParams
    from micro_app.core.errors import MicroAppError
    from micro_app.core.models import default_model_dir, load_package
    from micro_app.core.settings import load_settings

    settings = load_settings()
    saved = Path(settings.model_dir) if settings.model_dir else None
    folder = model or saved or default_model_dir()
    package = None
    if folder is not None and model is None and folder == saved:
        try:  # the saved model: a folder moved or deleted since must not block anything
            package = load_package(folder, keras=False)
        except MicroAppError as exc:
            print(f"micro-app: the saved model is unusable ({exc}); using the shipped one")
            folder = default_model_dir()
    if package is None and folder is not None:
        package = load_package(folder, keras=False)
    if package is None:
        print(
            "micro-app: no model installed; cells are located but not classified "
            "(pass --model DIR to classify them)",
            file=sys.stderr,
        )
    engine_params = EngineParams(
        threshold=threshold if threshold is not None else settings.engine.threshold,
        um_per_px=um_per_px if um_per_px is not None else settings.um_per_px(),
    )
    engine = Engine(
        package,
        settings.preprocess,
        settings.locate,
        engine_params,
        smooth_scale=live,
        backend=backend or settings.backend,
        on_message=lambda text: print(f"micro-app: {text}", file=sys.stderr),
    )
    return engine, settings


def cmd_classify(args: argparse.Namespace) -> int:
    from micro_app.core.batch import classify_paths

    engine, settings = load_engine(args.model, args.threshold, args.um_per_px, backend=args.backend)

    def done(path: Path, result: Any) -> None:
        print(f"{path}: {len(result.cells)} cells {result.counts()}")
        if result.input_warning:
            print(f"  warning: {result.input_warning}")

    report = classify_paths(
        engine,
        args.paths,
        args.out,
        settings=settings.to_dict(),
        video_every_s=args.video_every,
        on_error=lambda path, msg: print(f"micro-app: skipped: {msg}", file=sys.stderr),
        on_done=done,
    )
    print(
        f"{len(report.written)} results, {report.n_cells} cells, "
        f"{len(report.failed)} failed -> {args.out}"
    )
    for note in report.notes:
        print(f"warning: {note}")
    if report.n_unlike:
        print(
            f"warning: {report.n_unlike} of {len(report.written)} inputs look unlike the model's "
            "training images; see 'input_check' in their JSON"
        )
    return 0 if report.ok else 1


def cmd_bench(args: argparse.Namespace) -> int:
    import json

    from micro_app.core.bench import run_bench

    # the live view's engine (the scale smoothed over frames), as the window runs it
    engine, _ = load_engine(args.model, None, None, live=True, backend=args.backend)
    report = run_bench(engine, args.frames, args.images)
    report.update(window_bench(args.model, args.backend))
    if args.json:
        print(json.dumps(report))
        return 0
    pipe = report["pipeline"]
    lat = pipe["latency_ms"]
    model = report["model"]
    print(
        f"device {report['device']}, model {model['name'] if model else 'none'}, "
        f"frames {report['frame_size'][1]}x{report['frame_size'][0]}"
    )
    print(
        f"pipeline: {pipe['frames_per_s']:.1f} frames/s, {pipe['cells_per_s']:.1f} cells/s, "
        f"latency mean {lat['mean']:.1f} ms, p95 {lat['p95']:.1f} ms ({pipe['frames']} frames)"
    )
    for k, v in report["model_crops_per_s"].items():
        print(f"model alone, {k}: {v:.0f} crops/s")
    if report.get("cells_per_s_fp32"):
        print(
            f"8-bit model {report['cells_per_s']:.0f} cells/s against FP32 "
            f"{report['cells_per_s_fp32']:.0f} in this run "
            f"({report['cells_per_s'] / report['cells_per_s_fp32']:.2f}x); same class on "
            f"{report['int8_agreement']:.1%} of {report['int8_checked_on']}, probabilities "
            f"within {report['int8_max_probability_difference']:.2f}"
        )
    print(
        f"1080p frame with {report['busy_frame']['cells_per_frame']:.0f} cells: capture to "
        f"overlay {report['latency_ms_p50']:.0f} ms p50, {report['latency_ms_p95']:.0f} ms p95 "
        f"(locating {report['locate_ms_per_frame']:.1f} ms)"
    )
    if report.get("naive_cells_per_s"):
        print(
            f"cells/s {report['cells_per_s']:.0f} on {report['backend']}; one crop at a time "
            f"with model.predict (the papers' way) {report['naive_cells_per_s']:.0f}: "
            f"{report['speedup']:.1f}x"
        )
    if report.get("first_frame_s") is not None:
        fi = report["frame_interval_ms"]
        print(
            f"window: first classified cell {report['first_frame_s']:.2f} s after launch; "
            f"display {report['display_fps']:.1f} fps, frame interval p50 {fi['p50']:.0f} ms, "
            f"p95 {fi['p95']:.0f} ms, max {fi['max']:.0f} ms while inference ran"
        )
    print(f"peak memory {report['peak_rss_mb']:.0f} MB")
    return 0


def window_bench(model: Path | None, backend: str | None, seconds: float = 12.0) -> dict[str, Any]:
    """Start the real window offscreen on the demo for ``seconds`` and read what it measured
    (launch to the first classified cell, frame intervals); {} when it cannot run."""
    import json
    import os
    import subprocess
    import tempfile

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


def cmd_cameras() -> int:
    from micro_app.core.sources.opencv_camera import list_cameras

    cams = list_cameras()
    if not cams:
        print("no cameras found (micro-app live --demo runs without one)")
        return 0
    for cam in cams:
        print(f"{cam.index}: {cam.name} ({cam.backend})")
    return 0


def _spec(args: argparse.Namespace) -> str | None:
    if args.demo:
        return "demo"
    if args.source is not None:
        return str(args.source)
    if args.camera is not None:
        return f"camera:{args.camera}"
    return None


def cmd_window(args: argparse.Namespace) -> int:
    from micro_app.gui.app import run_window

    quit_after = args.quit_after
    if args.screenshot is not None and quit_after is None:
        quit_after = 5.0
    return run_window(
        source=_spec(args),
        model=args.model,
        screenshot=args.screenshot,
        quit_after=quit_after,
        backend=args.backend,
    )


def cmd_live(args: argparse.Namespace) -> int:
    from micro_app.core.live import run_live

    engine, settings = load_engine(
        args.model, args.threshold, args.um_per_px, live=True, backend=args.backend
    )
    spec = _spec(args) or settings.source
    if spec == "auto":
        from micro_app.core.sources import default_source_spec

        spec = default_source_spec()
    return run_live(
        engine,
        spec,
        seconds=args.seconds,
        out=args.out,
        snapshot_every=args.snapshot_every,
        settings=settings.to_dict(),
        target=settings.differential_target,
        watch=settings.watch,
    )
