"""Shared fixtures. Core tests need no display; Qt runs offscreen."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _shared(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"real images not available: {path} is absent (a fresh clone has no ../shared)")
    return path


@pytest.fixture(scope="session")
def bccd_dir() -> Path:
    return _shared("bccd")


@pytest.fixture(scope="session")
def pbc_dir() -> Path:
    return _shared("pbc")
