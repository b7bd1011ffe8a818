"""``micro-app`` / ``micro-app window``: the live window (``gui.app`` builds and runs it)."""

from __future__ import annotations

import argparse

from micro_app.cli.parser import source_spec


def cmd_window(args: argparse.Namespace) -> int:
    from micro_app.gui.app import run_window

    quit_after = args.quit_after
    if args.screenshot is not None and quit_after is None:
        quit_after = 5.0
    return run_window(
        source=source_spec(args),
        model=args.model,
        screenshot=args.screenshot,
        quit_after=quit_after,
        backend=args.backend,
    )
