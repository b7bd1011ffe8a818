"""The ``micro-app`` command line: every command and its arguments. Imports neither
TensorFlow, OpenCV nor Qt, so ``micro-app --help`` answers at once."""

from __future__ import annotations

import argparse
from pathlib import Path

from micro_app import __version__

# parsers only: neither imports TensorFlow, OpenCV or Qt
from micro_app.adapt import commands as adapt_commands
from micro_app.training import commands as training_commands

EPILOG = """\
examples:
  micro-app                                   the live window (camera, else the demo)
  micro-app --demo --screenshot shot.png --quit-after 5
  micro-app live --demo --seconds 25          run the live pipeline on the demo's real cells
  micro-app classify field.jpg slides/ --out results/
  micro-app cameras                           list the cameras this computer sees
  micro-app adapt models/lite0_pbc_bccd fields/ --out models/ours   calibrate to this microscope
"""


INTERRUPTED = 130  # the exit code of a command ended by Ctrl-C (128 + SIGINT), as shells say
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
    g.add_argument(
        "--demo",
        action="store_true",
        help="the demo: a stage of real cells (PBC, CC BY 4.0), no camera needed",
    )
    # a string, not a Path: a Path collapses the // of http://... (a network camera)
    g.add_argument(
        "--source",
        metavar="SOURCE",
        help="what to show: an image, a folder of images or a video to replay, a network "
        "camera's address (http://..., rtsp://...), camera:N, demo, or auto "
        "(the first camera, else the demo; default: the saved source)",
    )
    g.add_argument("--camera", type=int, help="camera index (see micro-app cameras)")


def source_spec(args: argparse.Namespace) -> str | None:
    """The source asked for by ``--demo``, ``--source`` or ``--camera``; None: the saved one."""
    if args.demo:
        return "demo"
    if args.source is not None:
        return str(args.source).strip()
    if args.camera is not None:
        return f"camera:{args.camera}"
    return None
