"""User-facing errors. Every one says what is wrong, where, and how to fix it.

The command line turns any :class:`SgdlabError` into its message and exit code 2, never a
traceback. Library code raises these (not bare ``ValueError``) for mistakes a user can make.
"""

from __future__ import annotations


class SgdlabError(Exception):
    """Base of every error caused by user input or configuration."""


class DataError(SgdlabError, ValueError):
    """Input data cannot be used: missing file, bad cell, NaN, wrong label kind, ..."""


class ConfigError(SgdlabError, ValueError):
    """A setting is out of range, unknown, or inconsistent with another setting or the data."""


class RunDirError(SgdlabError):
    """A run directory cannot be created, locked, or read."""


class DivergedWarning(RuntimeWarning):
    """Training diverged (NaN/inf); the model holds the last finite parameters. Raised as a
    warning, not an error: the run directory and its history are still written and useful."""


def choices_message(what: str, given: str, valid) -> str:
    """``unknown model 'sofmax'; valid: linear, mlp, ...`` with the valid names sorted."""
    plural = what + ("es" if what.endswith("s") else "s")
    return f"unknown {what} {given!r}; valid {plural}: {', '.join(sorted(valid))}"
