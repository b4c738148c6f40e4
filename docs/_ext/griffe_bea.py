"""A Griffe extension for the docstrings of `bea` and `numeric`.

The docstrings are Markdown with Google-style sections, except that examples are
headed `Example:` or `Example (what it shows):`, which Griffe's Google parser does not
know (it would render the doctest as prose). Rewriting the heading here, as
`Examples:` with the parenthesis as the section's first line, keeps the library's
docstrings as they are.
"""

from __future__ import annotations

import re

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example(?: \((.+)\))?:[ \t]*$")


def examples_sections(text: str) -> str:
    """`text` with every `Example:` / `Example (caption):` heading read as `Examples:`."""
    lines = text.split("\n")
    out = []
    for i, line in enumerate(lines):
        match = _EXAMPLE.match(line)
        if not match:
            out.append(line)
            continue
        indent, caption = match.groups()
        out.append(f"{indent}Examples:")
        if caption:
            following = next((x for x in lines[i + 1 :] if x.strip()), indent + "    ")
            inner = following[: len(following) - len(following.lstrip())]
            out.append(f"{inner}{caption[0].upper()}{caption[1:]}:")
            out.append("")
    return "\n".join(out)


class ExampleSections(griffe.Extension):
    """Reads an `Example:` heading as Griffe's `Examples:` section."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = examples_sections(obj.docstring.value)
