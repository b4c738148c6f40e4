"""A Griffe extension for the docstrings of `bea` and `numeric`.

The docstrings are Markdown with Google-style sections, with two habits Griffe's
Google parser does not know:

- examples are headed `Example:` or `Example (what it shows):` (it would render the
  doctest as prose): read as `Examples:` with the parenthesis as the first line;
- an `Attributes:` item may document several names at once (`a, b: what they are`),
  as `Arguments:` items do: read as one item per name.

Rewriting the text here keeps the library's docstrings as they are.
"""

from __future__ import annotations

import re

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example(?: \((.+)\))?:[ \t]*$")
_ATTRIBUTES = re.compile(r"^(\s*)Attributes:[ \t]*$")
_SEVERAL = re.compile(r"^(\s+)(\w+(?:, \w+)+):(.*)$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def attribute_items(text: str) -> str:
    """`text` with each `a, b: description` item of an `Attributes:` section written
    as one item per name, each with the whole description."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        out.append(lines[i])
        head = _ATTRIBUTES.match(lines[i])
        i += 1
        if not head:
            continue
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > len(head[1])):
            several = _SEVERAL.match(lines[i])
            if not several:
                out.append(lines[i])
                i += 1
                continue
            item_indent, names, first = several.groups()
            j = i + 1  # the item's continuation lines, indented deeper
            while j < len(lines) and lines[j].strip() and _indent(lines[j]) > len(item_indent):
                j += 1
            for name in names.split(", "):
                out.append(f"{item_indent}{name}:{first}")
                out.extend(lines[i + 1 : j])
            i = j
    return "\n".join(out)


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
    """Reads `Example:` headings as Griffe's `Examples:` sections, and `Attributes:`
    items naming several attributes as one item each."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = attribute_items(examples_sections(obj.docstring.value))
