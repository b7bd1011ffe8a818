"""Errors a user can act on: each message says what happened and what to do, in one sentence."""

from __future__ import annotations


class MicroAppError(Exception):
    """Base class for errors shown to the user as one line."""


class SourceError(MicroAppError):
    """A frame source could not be opened or stopped delivering frames."""


class UnsupportedProperty(SourceError):
    """The source cannot set the requested property (exposure, gain, ...)."""


class ModelPackageError(MicroAppError):
    """A model package is missing, corrupt, or its card does not match its weights."""


class InputError(MicroAppError):
    """An input file or folder cannot be read."""


class SettingsError(MicroAppError):
    """A settings value is out of range or of the wrong type."""
