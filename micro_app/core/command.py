"""How the user can type this program again, for messages that suggest a command.

After the README's install (``python3 -m venv .venv && .venv/bin/pip install -e .``) the
command is ``.venv/bin/micro-app``: ``micro-app`` alone is not on the PATH, so a message
that says ``micro-app classify …`` leads nowhere. ``command_name()`` gives ``micro-app``
only when that name on the PATH is this very program, else the path it was started by
(relative to the current folder when inside it), or ``python -m micro_app``.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

MODULE = "micro_app"


def _shown(path: Path, cwd: Path) -> str:
    """``path`` as short as it can be typed from ``cwd``: relative inside it, else absolute."""
    try:
        rel = path.relative_to(cwd)
    except ValueError:
        return str(path)
    text = str(rel)
    return text if os.sep in text else f".{os.sep}{text}"  # a bare name would mean the PATH


def command_name(
    argv0: str | None = None,
    *,
    which: Callable[[str], str | None] = shutil.which,
    cwd: Path | None = None,
    executable: str | None = None,
) -> str:
    """The command that started this program, as the user can type it again."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    cwd = Path.cwd() if cwd is None else cwd
    started = Path(argv0)
    if not argv0 or started.name in ("__main__.py", "-c", "-m"):  # python -m micro_app
        python = Path(executable or sys.executable)
        return f"{_shown(python, cwd) if python.is_absolute() else python} -m {MODULE}"
    started = (cwd / started).absolute() if not started.is_absolute() else started
    on_path = which(started.name)
    if on_path is not None and _same_file(Path(on_path), started):
        return started.name
    return _shown(started, cwd)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False
