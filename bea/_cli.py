"""The old import path of the command line; the command line lives in `bea.cli`."""

from __future__ import annotations

import sys

from .cli._main import main, parse_param, parse_value

__all__ = ["main", "parse_param", "parse_value"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
