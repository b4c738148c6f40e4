"""The package's own exceptions.

Every user mistake raises a subclass of `BeaError` carrying one sentence that names
the offending argument and says how to fix it. The CLI prints that sentence and
exits with status 2; it never shows a traceback for these.
"""

from __future__ import annotations

import os
import sysconfig
import traceback

__all__ = [
    "BeaAttributeError",
    "BeaError",
    "BeaTypeError",
    "BeaValueError",
    "NotAGradientError",
    "TraceError",
    "check_integer",
    "library_error",
    "rule_library_error",
    "user_line",
]

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# bea and its numerical sibling `numeric` (a checkout keeps them side by side)
_OUR_DIRS = (_PACKAGE_DIR, os.path.join(os.path.dirname(_PACKAGE_DIR), "numeric"))
_STDLIB = os.path.abspath(sysconfig.get_paths()["stdlib"])


class BeaError(Exception):
    """Base class of every error `bea` raises on purpose.

    `suggestion` is a typed hint for the code that catches it (never parsed from the
    text): "coordinate" where a rule turned out to be coordinate-wise (a `bea.ops`
    function met a tree-traced value, or the coordinate engine traced the rule and
    stopped only for an undeclared region or a memory that does not contract).
    """

    def __init__(self, *args, suggestion: str | None = None):
        super().__init__(*args)
        self.suggestion = suggestion


class BeaValueError(BeaError, ValueError):
    """A value is out of range, unknown or malformed."""


class BeaTypeError(BeaError, TypeError):
    """An argument has the wrong kind (a float in an exact derivation, ...)."""


class BeaAttributeError(BeaError, AttributeError):
    """An attribute that belongs to another kind of result (an equation over the other
    basis); an `AttributeError` too, so `hasattr` and `getattr` with a default work."""


class TraceError(BeaValueError):
    """An update rule did something the symbolic tracer cannot represent."""


class NotAGradientError(BeaValueError):
    """The modified field of a block is not a gradient at some order.

    Attributes:
        obstructions: the free trees whose rootings disagree, with their b values.
        decomposition: the `ModifiedLoss` with held-fixed remainder terms (always exists).
    """

    def __init__(self, message: str, obstructions, decomposition):
        super().__init__(message)
        self.obstructions = obstructions
        self.decomposition = decomposition


# Shown to users (tracebacks, doctests) under the public name, `bea.BeaValueError`.
for _cls in (
    BeaError,
    BeaValueError,
    BeaTypeError,
    BeaAttributeError,
    NotAGradientError,
    TraceError,
):
    _cls.__module__ = "bea"
del _cls


def check_integer(value, name: str, low: int = 0, high: int | None = None, why: str = "") -> int:
    """`value` when it is an integer in [`low`, `high`] (not a bool); otherwise one
    sentence: a `BeaTypeError` for another kind, a `BeaValueError` for an integer out of
    range (`why` says what the upper limit protects).

    An integer of thousands of digits is described by its size, never converted to
    text (Python refuses to print one of more than 4300 digits).

    Example:
        >>> check_integer(3, "order")
        3
        >>> check_integer(10**10, "n", 1, 1000, " steps")
        Traceback (most recent call last):
        ...
        bea.BeaValueError: n=10000000000 is above the limit of 1000 steps; lower it
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise BeaTypeError(f"{name}={_shown(value)} must be an integer >= {low}")
    if value < low:
        raise BeaValueError(f"{name}={_shown(value)} must be an integer >= {low}")
    if high is not None and value > high:
        raise BeaValueError(f"{name}={_shown(value)} is above the limit of {high}{why}; lower it")
    return value


def _shown(value) -> str:
    """A value for a message: short, and an integer of many digits by its size."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value).bit_length() > 64:
        digits = int(abs(value).bit_length() * 0.30103) + 1
        return f"{'-' if value < 0 else ''}(an integer of about {digits} digits)"
    try:
        text = repr(value)
    except Exception:  # a user's object whose repr fails
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 40 else text[:37] + "..."


def _library(path: str) -> str | None:
    """The library a source file belongs to (its top-level package), or None when the
    file is the user's own code.

    A library is anything installed (under `site-packages` or `dist-packages`), the
    standard library, or one of Python's frozen modules.
    """
    if path.startswith("<frozen"):
        return path.strip("<>").split()[-1].split(".")[0]
    full = os.path.abspath(path)
    parts = full.split(os.sep)
    for i, part in enumerate(parts[:-1]):
        if part in ("site-packages", "dist-packages"):
            return os.path.splitext(parts[i + 1])[0]
    if full.startswith(_STDLIB + os.sep):
        return os.path.splitext(full[len(_STDLIB) + 1 :].split(os.sep)[0])[0]
    return None


def _ours(path: str) -> bool:
    full = os.path.abspath(path)
    if any(full.startswith(d + os.sep) for d in _OUR_DIRS):
        return True
    # the `bea` console script: its `sys.exit(main())` is no line of the user's
    return os.path.basename(full) == "bea" and os.path.basename(os.path.dirname(full)) == "bin"


def _describe(frame) -> str:
    code = f" `{frame.line.strip()}`" if frame.line else ""
    return f"{os.path.basename(frame.filename)}:{frame.lineno}{code}"


def _locate(frames) -> tuple[traceback.FrameSummary | None, str | None]:
    """`(the user's frame, the library it called or None)` for frames listed outermost
    first.

    The user's line is the innermost frame that is neither `bea` (nor `numeric`) nor
    a library. When the innermost frame outside `bea` lies in a library, the library
    is the one the user's line called (JAX, optax, equinox, ...); else it is None.
    Without any frame of the user's, the innermost frame outside `bea` is named.
    """
    library = None
    for frame in reversed(frames):
        if _ours(frame.filename):
            library = None  # a library that bea called itself (SymPy) is not the user's call
            continue
        site = _library(frame.filename)
        if site is None:
            return frame, library
        if library is None or frame.name != "wrapper":
            # a decorator's `wrapper` (JAX wraps equinox's __call__) names no library
            library = site
    for frame in reversed(frames):
        if _ours(frame.filename) and frame.name == "update":  # a built-in rule's own line
            return frame, library
    for frame in reversed(frames):
        if not _ours(frame.filename):
            return frame, library
    return None, library


def user_frame() -> tuple[str, int]:
    """`(file, line)` of the innermost frame of the user's code (see `user_line`)."""
    frame, _ = _locate(traceback.extract_stack()[:-1])
    return (frame.filename, frame.lineno or 0) if frame else ("<unknown>", 0)


def user_line() -> str:
    """Where in the user's code the current operation happens: `file:line (code)`.

    The innermost stack frame outside the `bea` package and outside libraries (JAX,
    optax, NumPy, the standard library, ...); used to point error messages at the
    line of the update rule that caused them, also when a library called back into
    `bea`.
    """
    frame, _ = _locate(traceback.extract_stack()[:-1])
    return _describe(frame) if frame else "<unknown line>"


def library_error(library: str, where: str) -> TraceError:
    """The error for a traced value that reached a library (`jnp.sqrt(g)`, optax, ...)."""
    return TraceError(
        f"the rule passes a traced value to {library} at {where}; a derivation runs the "
        "rule on exact series, not arrays, so write the update with Python operators "
        "(theta - h * g) and bea.ops (sqrt, abs, sign, maximum, minimum, norm; derived "
        "per coordinate by bea.modified_equation)"
    )


def rule_library_error(err: BaseException) -> TraceError | None:
    """`library_error` for an exception raised while a rule ran on traced values, when
    it was raised inside a library the rule's code called; None otherwise (the
    exception is then the user's own or `bea`'s, and stands).
    """
    if getattr(err, "_bea_library", False):
        return None
    tb = err.__traceback__
    cause = err.__cause__
    if type(cause).__name__ == "UnfilteredStackTrace":  # JAX_TRACEBACK_FILTERING=remove_frames
        tb = cause.__traceback__
    frame, library = _locate(traceback.extract_tb(tb))
    where = _describe(frame) if frame else "<unknown line>"
    if library is None and any("JAX" in note for note in getattr(err, "__notes__", ())):
        # JAX removed its own frames from the traceback (its default filtering) and
        # said so in a note: the innermost frame left is the user's call into JAX
        library = "jax"
    if library is None:
        return None
    out = library_error(library, where)
    out._bea_library = True
    return out
