"""Exceptions of winback: the one place they are defined (the Rust extension raises these too)."""

from __future__ import annotations

__all__ = ["WinbackConfigError", "WinbackError", "WinbackFitError", "WinbackInputError"]


class WinbackError(Exception):
    """Base class of every error winback raises on purpose."""


class WinbackInputError(WinbackError, ValueError):
    """The input data is unusable as given: the message names the column, the rows and the fix."""


class WinbackConfigError(WinbackError, ValueError):
    """An argument or configuration value is invalid: the message names it and its valid range."""


class WinbackFitError(WinbackError, RuntimeError):
    """A model could not be fitted: the message carries the optimiser's reason and a hint."""
