"""The package's own exceptions.

Every user mistake raises a subclass of `BeaError` carrying one sentence that names
the offending argument and says how to fix it. The CLI prints that sentence and
exits with status 2; it never shows a traceback for these.
"""

from __future__ import annotations

import os
import traceback

__all__ = ["BeaError", "BeaTypeError", "BeaValueError", "TraceError", "user_line"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class BeaError(Exception):
    """Base class of every error `bea` raises on purpose."""


class BeaValueError(BeaError, ValueError):
    """A value is out of range, unknown or malformed."""


class BeaTypeError(BeaError, TypeError):
    """An argument has the wrong kind (a float in an exact derivation, ...)."""


class TraceError(BeaValueError):
    """An update rule did something the symbolic tracer cannot represent."""


def user_line() -> str:
    """Where in the user's code the current operation happens: `file:line (code)`.

    The innermost stack frame outside the `bea` package; used to point error
    messages at the line of the update rule that caused them.
    """
    for frame in reversed(traceback.extract_stack()[:-1]):
        path = os.path.abspath(frame.filename)
        if not path.startswith(_PACKAGE_DIR + os.sep):
            code = f" `{frame.line.strip()}`" if frame.line else ""
            return f"{os.path.basename(frame.filename)}:{frame.lineno}{code}"
    return "<unknown line>"
