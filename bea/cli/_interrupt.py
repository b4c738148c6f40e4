"""Ctrl-C ends the `bea` process with one line and status 130, wherever it lands.

Python turns SIGINT into a `KeyboardInterrupt` raised at whatever bytecode runs
next. Under JAX that is often a garbage-collector callback, whose exceptions Python
prints as "Exception ignored in ..." and drops: the run went on and exited 0. So
the process installs its own handler, which ends the process at once
(`os._exit(130)`, the shell's 128 + SIGINT) after one line on stderr.

An output file is written whole or not at all: `write_atomically` writes a
temporary file beside the target and renames it over the target, with the
interrupt deferred to just after the rename.

The handler is installed only by the script entry point (`main()` without
arguments, in the main thread): `main([...])` called from Python (a notebook, a
test) keeps its caller's Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator

__all__ = ["deferring_interrupt", "ending_on_interrupt", "write_atomically"]

MESSAGE = b"bea: error: interrupted\n"

_deferred = 0  # depth of nested `deferring_interrupt` blocks
_pending = False  # an interrupt arrived inside one of them


def _end() -> None:
    with contextlib.suppress(OSError):
        os.write(2, MESSAGE)
    os._exit(130)


def _on_interrupt(signum, frame) -> None:
    global _pending
    if _deferred:
        _pending = True
        return
    _end()


@contextlib.contextmanager
def ending_on_interrupt(install: bool) -> Iterator[None]:
    """Within the block, Ctrl-C ends the process (when `install` and in the main thread)."""
    if not install or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def deferring_interrupt() -> Iterator[None]:
    """Within the block, a Ctrl-C waits for the block to end (a write to finish)."""
    global _deferred, _pending
    _deferred += 1
    try:
        yield
    finally:
        _deferred -= 1
        if not _deferred and _pending:
            _pending = False
            _end()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomically(path: str, write: Callable[[str], object]) -> None:
    """Call `write(temporary_path)`, then rename the temporary file onto `path`.

    The temporary file sits in `path`'s folder (a rename within one file system is
    atomic) and keeps its extension (a plotting library picks the format from it);
    it is removed if `write` raises. A reader sees the old file or the new one,
    never half of one.
    """
    folder, name = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(name)
    os.makedirs(folder, exist_ok=True)
    with deferring_interrupt():
        fd, tmp = tempfile.mkstemp(prefix=f".{stem[:64]}.", suffix=f".partial{ext}", dir=folder)
        os.close(fd)
        try:
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 is not what `open` gives
            write(tmp)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
