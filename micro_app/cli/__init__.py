"""The ``micro-app`` command: one module per command (``live``, ``classify``, ``bench``,
``cameras``, ``window``), the arguments in ``parser``. Heavy modules (TensorFlow, OpenCV,
Qt) load inside the commands, so ``micro-app --help`` answers at once.

Every mistake is one line on the terminal, ``micro-app: what happened: what to do``, with
the details in the log file; Ctrl-C ends a command with what it did so far and exit code 130.
"""

from __future__ import annotations

import argparse
import sys

from micro_app.adapt import commands as adapt_commands
from micro_app.cli.parser import ALL_COMMANDS, INTERRUPTED, build_parser
from micro_app.training import commands as training_commands

__all__ = ["build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--selftest"]:  # the installed app's spelling: MicroApp --selftest
        argv = ["selftest", *argv[1:]]
    if not argv or argv[0] not in ALL_COMMANDS | {"-h", "--help", "--version"}:
        argv = ["window", *argv]  # no subcommand: the window on the saved or first source
    args = build_parser().parse_args(argv)
    from micro_app.core.errors import MicroAppError
    from micro_app.core.logs import setup_logging

    setup_logging(console=True)
    try:
        return _run(args)
    except MicroAppError as exc:
        print(f"micro-app: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before a command had anything to keep (a model loading)
        print("micro-app: stopped (Ctrl-C)", file=sys.stderr)
        return INTERRUPTED


def _run(args: argparse.Namespace) -> int:
    command = args.command
    if command == "live":
        from micro_app.cli.live import cmd_live

        return cmd_live(args)
    if command == "classify":
        from micro_app.cli.classify import cmd_classify

        return cmd_classify(args)
    if command == "bench":
        from micro_app.cli.bench import cmd_bench

        return cmd_bench(args)
    if command == "cameras":
        from micro_app.cli.cameras import cmd_cameras

        return cmd_cameras()
    if command == "selftest":
        from micro_app.selftest import run

        return run()
    if command in training_commands.COMMANDS:
        return training_commands.run(args)
    if command in adapt_commands.COMMANDS:
        return adapt_commands.run(args)
    from micro_app.cli.window import cmd_window

    return cmd_window(args)
