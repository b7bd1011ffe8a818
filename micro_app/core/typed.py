"""Reading typed settings from JSON: a mapping with no keys the dataclass does not know."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from micro_app.core.errors import MicroAppError, SettingsError


def known_keys_only(
    cls: type, data: Any, what: str, error: type[MicroAppError] = SettingsError, hint: str = ""
) -> dict[str, Any]:
    """A copy of ``data`` after checking it is a mapping of ``cls``'s field names only."""
    if not isinstance(data, dict):
        raise error(f"{what} must be a JSON object, got {data!r}")
    unknown = sorted(set(data) - {f.name for f in fields(cls)})
    if unknown:
        raise error(f"{what} has unknown keys {unknown}: remove them{hint}")
    return dict(data)
