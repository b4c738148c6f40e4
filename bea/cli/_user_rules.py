"""Rules named on the command line: a built-in name, or `path/to/file.py:name`.

A user file is imported by its path (`importlib`), never read as a string and
evaluated; the name must be a `bea.Rule` or an update function defined in it. Every
failure (no such file, no such name, not a rule, the file raising on import) is one
sentence.
"""

from __future__ import annotations

import importlib.util
import os
import sys

from .._core._errors import BeaValueError
from .._rules._rule import Rule, as_rule

__all__ = ["load_file", "resolve_rule"]


def load_file(text: str, what: str):
    """The module of `path/to/file.py:name`, imported by its path; `what` ("rule",
    "problem") names the kind of object in messages."""
    path, _, name = text.rpartition(":")
    if not name.isidentifier():
        raise BeaValueError(
            f"{what} {text!r}: {name!r} is not a Python name; write path/to/file.py:my_{what}"
        )
    if not os.path.isfile(path):
        raise BeaValueError(f"{what} file {path!r} does not exist; give the path of a .py file")
    module_name = f"_bea_user_{what}s_{abs(hash(os.path.abspath(path)))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py path always has one
        raise BeaValueError(f"{what} file {path!r} cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as err:  # the user's file raised or exited: one line
        del sys.modules[module_name]
        raise BeaValueError(
            f"{what} file {path!r} raised {type(err).__name__} on import ({err}); fix the file"
        ) from None
    return module


def resolve_rule(text: str) -> Rule:
    """The rule a command-line argument names (see the module docs)."""
    from .._rules._builtin import get_rule

    path, sep, name = text.rpartition(":")
    if not sep or not path.endswith(".py"):
        return get_rule(text)
    module = load_file(text, "rule")
    if not hasattr(module, name):
        found = sorted(
            k for k, v in vars(module).items() if isinstance(v, Rule) and not k.startswith("_")
        )
        hint = f"; its rules are {', '.join(found)}" if found else ""
        raise BeaValueError(f"rule file {path!r} defines no {name!r}{hint}")
    obj = getattr(module, name)
    if not isinstance(obj, Rule) and not callable(obj):
        raise BeaValueError(
            f"{name!r} in {path!r} is a {type(obj).__name__}, not an update rule; define it "
            "as def rule(state, h, grad) or with @bea.rule"
        )
    return as_rule(obj)
