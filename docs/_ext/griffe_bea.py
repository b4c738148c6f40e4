"""A Griffe extension for the docstrings of `bea` and `numeric`.

The docstrings are Markdown with Google-style sections, except that examples are
headed `Example:`, which Griffe's Google parser does not know (it would render the
doctest as prose). Renaming the heading here keeps the library's docstrings as they are.
"""

from __future__ import annotations

import re

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    """Reads an `Example:` heading as Griffe's `Examples:` section."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
