"""Subcommands train / evaluate / export / explain, registered on the main parser.

Nothing here imports TensorFlow at module level: ``micro-app --help`` must stay fast.
"""

from __future__ import annotations

import argparse

COMMANDS: frozenset[str] = frozenset()


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add this package's subcommands to ``sub``."""


def run(args: argparse.Namespace) -> int:
    raise SystemExit(f"unknown command {args.command}")
