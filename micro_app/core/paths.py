"""Where the app keeps the user's files, per operating system (platformdirs), each folder
overridable by an environment variable. Ground floor: imports nothing of the app, so the
logger, the settings and the model library can all use it.

- settings (``MICRO_APP_CONFIG_DIR``): Linux ``~/.config/micro_app``, Windows
  ``%LOCALAPPDATA%\\micro_app``, macOS ``~/Library/Application Support/micro_app``;
- logs (``MICRO_APP_LOG_DIR``): Linux ``~/.local/state/micro_app/log``, Windows
  ``%LOCALAPPDATA%\\micro_app\\Logs``, macOS ``~/Library/Logs/micro_app``;
- labelled cells and adapted models (``MICRO_APP_DATA_DIR``): Linux
  ``~/.local/share/micro_app``, Windows ``%LOCALAPPDATA%\\micro_app``, macOS
  ``~/Library/Application Support/micro_app``;
- snapshots and slide reports (the ``snapshot_dir`` setting): the user's Pictures folder,
  ``micro_app`` inside it.
"""

from __future__ import annotations

import os
from pathlib import Path

APP = "micro_app"


def config_dir() -> Path:
    env = os.environ.get("MICRO_APP_CONFIG_DIR")
    if env:
        return Path(env)
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP, appauthor=False))


def log_dir() -> Path:
    env = os.environ.get("MICRO_APP_LOG_DIR")
    if env:
        return Path(env)
    from platformdirs import user_log_dir

    return Path(user_log_dir(APP, appauthor=False))


def data_dir() -> Path:
    """The user's data folder: adapted model versions and the cells the lab labelled."""
    env = os.environ.get("MICRO_APP_DATA_DIR")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP, appauthor=False))


def default_snapshot_dir() -> Path:
    """Snapshots and slide reports, unless the settings name another folder."""
    from platformdirs import user_pictures_dir

    return Path(user_pictures_dir()) / APP
