"""Former public names that still import for one release, with a `DeprecationWarning`."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Mapping

__all__ = ["former_names"]


def former_names(package: str, table: Mapping[str, tuple[str, str, str]], names: Mapping):
    """`(__getattr__, __dir__)` for `package`, whose former names import through `table`.

    Arguments:
        package: the package's `__name__` (`"bea"`, `"numeric"`).
        table: former name -> (module relative to `package`, attribute, replacement
            named in the warning).
        names: the package's namespace (its `globals()`), for `__dir__`.

    The warning names the replacement; `dir(package)` lists only the current names.
    """

    def __getattr__(name: str):
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attribute, replacement = table[name]
        warnings.warn(
            f"{package}.{name} is deprecated and will be removed in the next release; "
            f"use {replacement}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(module, package), attribute)

    def __dir__():
        return sorted(set(names) - set(table))

    return __getattr__, __dir__
