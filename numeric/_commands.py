"""Moved: the command line's numerical side lives in `bea.cli._verify`.

A shim until `numeric/__init__.py` stops re-exporting `demo_verification` and
`verify_command`; `numeric` itself has no command-line printing.
"""

from __future__ import annotations

__all__ = ["demo_verification", "verify_command"]


def verify_command(*args, **kwargs):
    """Deprecated location of `bea.cli._verify.verify_command`."""
    from bea.cli._verify import verify_command as impl

    return impl(*args, **kwargs)


def demo_verification(*args, **kwargs):
    """Deprecated location of `bea.cli._verify.demo_verification`."""
    from bea.cli._verify import demo_verification as impl

    return impl(*args, **kwargs)
