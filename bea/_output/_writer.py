"""The pieces every generated module is written with: names and LaTeX of elementary
differentials, line wrapping, the module header and `_Writer`, which collects one inner
function per distinct elementary differential (shared subexpressions) and the calls
that evaluate them in order of size.

Pure string generation, shared by the tree writers of `bea.codegen` (fields, losses,
schedules); `bea` never imports JAX or PyTorch.
"""

from __future__ import annotations

import keyword
import re

import sympy as sp

from .._core._errors import BeaValueError
from .._core._trees import Tree
from ._backend import JAX, Backend
from ._source import _doc

__all__ = [
    "_CONSTANTS_DOC",
    "_Writer",
    "_call",
    "_coefficient",
    "_finish",
    "_h_power",
    "_header",
    "_latex_of",
    "_scale_note",
    "_scaled",
    "_wrap_latex",
    "_wrap_text",
    "field_terms",
]


# -- names and LaTeX of elementary differentials ----------------------------------------
def _tree_name(t: Tree) -> str:
    if not t.children:
        return t.root
    return f"{t.root}_of_" + "_and_".join(_tree_name(c) for c in t.children)


def _latex_symbol(name: str) -> str:
    return sp.latex(sp.Symbol(name))


def _tree_latex(t: Tree, colours: dict, single: bool) -> str:
    """F(t) as LaTeX: nabla^(m+1) L(F(t_1), ...) for a gradient, f^(m)(...) for a field."""
    o = colours[t.root]
    m = len(t.children)
    args = ", ".join(_tree_latex(c, colours, single) for c in t.children)
    if o.kind == "grad":
        sub = "" if single else f"_{{{_latex_symbol(o.block)}}}"
        power = "" if m == 0 else f"^{{{m + 1}}}"
        head = f"\\nabla{power}{sub} {_latex_symbol(o.name)}"
    else:
        sub = "" if single else f"_{{{_latex_symbol(o.block)}}}"
        power = "" if m == 0 else f"^{{({m})}}"
        head = f"{_latex_symbol(o.name)}{sub}{power}"
    return head if m == 0 else f"{head}\\left({args}\\right)"


_WIDTH = 100


def _wrap_text(ind: str, text: str) -> list[str]:
    """Docstring text broken at spaces so that every line fits in `_WIDTH`."""
    out, line = [], ind
    for word in text.split(" "):
        if line.strip() and len(line) + 1 + len(word) > _WIDTH:
            out.append(line.rstrip())
            line = ind + "    " + word
        else:
            line = line + (" " if line.strip() else "") + word
    out.append(line.rstrip())
    return out


def _coefficient(ind: str, target: str, src: str, comment: str) -> list[str]:
    """`target = float(src)  # comment`, broken inside the parentheses (at spaces,
    which Python allows there) when the line would be too long."""
    line = f"{ind}{target} = float({src})  # {comment}"
    if len(line) <= _WIDTH:
        return [line]
    body = _wrap_text(ind + "    ", src)
    return [f"{ind}# {comment}", f"{ind}{target} = float(", *body, f"{ind})"]


def _call(ind: str, target: str, func: str, args: list[str]) -> list[str]:
    """`target = func(args)` on one line, or one argument per line when too long."""
    one = f"{ind}{target} = {func}({', '.join(args)})"
    if len(one) <= _WIDTH:
        return [one]
    return [f"{ind}{target} = {func}(", *(f"{ind}    {a}," for a in args), f"{ind})"]


class _Writer:
    """Collects the inner functions of one module: one per distinct differential."""

    def __init__(self, colours: dict, blocks: tuple[str, ...], backend: Backend = JAX):
        self.backend = backend
        self.colours = colours
        self.blocks = blocks
        self.single = len(blocks) == 1
        self.names: dict[Tree, str] = {}
        self.order: list[Tree] = []
        self.taken: set[str] = set()

    def need(self, t: Tree) -> None:
        if t in self.names:
            return
        for c in t.children:
            self.need(c)
        base = _tree_name(t)
        base = base if len(base) <= 40 and base.isidentifier() else f"d{len(self.order)}"
        name, i = base, 1
        while name in self.taken or keyword.iskeyword(name):
            i += 1
            name = f"{base}_{i}"
        self.taken.add(name)
        self.names[t] = name
        self.order.append(t)

    def value(self, t: Tree) -> str:
        return "v_" + self.names[t]

    def oracle_functions(self, ind: str) -> list[str]:
        out = []
        for colour in sorted({t.root for t in self.order}):
            o = self.colours[colour]
            i = self.blocks.index(o.block)
            leaf = Tree(colour)
            fname = ("grad_" if o.kind == "grad" else "field_") + colour
            tex = _tree_latex(leaf, self.colours, self.single)
            what = (
                f"the gradient of loss {_doc(o.name)}"
                if o.kind == "grad"
                else f"the field {_doc(o.name)}"
            )
            if not self.single:
                what += f" in block {_doc(o.block)}, zero in the others"
            out.append(f"{ind}def {fname}(state):")
            doc = _wrap_text(ind + "    ", f'r"""${tex}$: {what}."""')
            out += doc
            if o.kind == "grad":
                value = self.backend.grad.format(fn=f"losses[{o.name!r}]")
                if not self.single:
                    value += f"[{i}]"
            else:
                value = f"fields[{o.name!r}](state)"
            if self.single:
                out.append(f"{ind}    return {value}")
            else:
                out.append(f"{ind}    return _in_block(state, {i}, {value})")
            out.append("")
        return out

    def differential_functions(self, ind: str) -> list[str]:
        out = []
        for t in self.order:
            if not t.children:
                continue
            args = [f"u{j}" for j in range(len(t.children))]
            tex = _tree_latex(t, self.colours, self.single)
            kids = ", ".join(f"u{j} = F({c})" for j, c in enumerate(t.children))
            root = ("grad_" if self.colours[t.root].kind == "grad" else "field_") + t.root
            out.append(f"{ind}def {self.names[t]}(state, {', '.join(args)}):")
            out += _wrap_text(ind + "    ", f'r"""${tex}$')
            out.append("")
            out.append(f"{ind}    F({t}), the derivative of order {len(args)} of {root} along")
            out.append(f"{ind}    {kids} (nested {self.backend.jvp}).")
            out.append(f'{ind}    """')
            out.append(f"{ind}    return _derivative({root}, state, [{', '.join(args)}])")
            out.append("")
        return out

    def evaluations(self, ind: str) -> list[str]:
        out = []
        for t in self.order:
            if not t.children:
                fname = ("grad_" if self.colours[t.root].kind == "grad" else "field_") + t.root
                out += _call(ind, self.value(t), fname, ["state"])
            else:
                kids = [self.value(c) for c in t.children]
                out += _call(ind, self.value(t), self.names[t], ["state", *kids])
        return out


_CONSTANTS_DOC = (
    "constants: values of the rule's symbols {}, e.g. {{'alpha': 0.5}}; h is an argument."
)


def _header(
    title: str,
    body_latex: str,
    entry: list[str],
    update: bool,
    names: list[str],
    loop: list[str] = (),
    backend: Backend = JAX,
) -> list[str]:
    lines = _wrap_text("", 'r"""' + title)
    lines.append("")
    # the LaTeX of the coefficients holds the rule's symbol names: no quote may end the
    # docstring (a backslash escape would not do in a raw string after LaTeX's own), and
    # control characters are written as escapes
    lines += [
        "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in line)
        for line in body_latex.replace('"', "'").splitlines()
    ]
    lines += ["", "Entry points:", ""]
    lines += [f"* {e}" for e in entry]
    if loop:
        lines += ["", *loop]
    lines += [
        "",
        f"Generated by bea.codegen; needs {backend.needs(update)}, not bea.",
        '"""',
        "",
        "from fractions import Fraction",
        "",
        *backend.imports(update),
    ]
    quoted = ", ".join(repr(n) for n in names) + ("," if len(names) == 1 else "")
    lines += ["", f"LOSS_NAMES = ({quoted})", '"""The loss names the rule uses."""']
    return lines


def _wrap_latex(text: str, width: int = 96) -> str:
    """Break a long LaTeX line at its top-level + and - signs."""
    out = []
    for line in text.splitlines():
        while len(line) > width:
            cut = max(line.rfind(" + ", 0, width), line.rfind(" - ", 0, width))
            if cut <= 8:  # no sign past the continuation indent: break at a space
                cut = line.rfind(" ", 0, width)
            if cut <= 8:
                break
            out.append(line[:cut])
            line = "    " + line[cut + 1 :]
        out.append(line)
    return "\n".join(out)


def _scale_note(scale) -> str:
    """A line after the LaTeX of a scaled derivation: the code differs from it."""
    if scale == 1:
        return ""
    return f"\n\nThe code multiplies the h-terms above by {_doc(scale)}."


def _scaled(scale) -> str:
    """The title's note on a scaled drift."""
    return "" if scale == 1 else f", its drift (h-terms) scaled by {_doc(scale)}"


def _h_power(k: int) -> str:
    return "" if k == 0 else (" * h" if k == 1 else f" * h**{k}")


def _finish(lines: list[str]) -> str:
    text = "\n".join(lines)
    text = re.sub(r"\n{4,}", "\n\n\n", text)
    return text.rstrip("\n") + "\n"


def _latex_of(obj) -> str:
    try:
        return obj.latex()
    except BeaValueError:  # pragma: no cover - rendering is best effort in docstrings
        return str(obj)


def field_terms(eq, scale, backend: Backend) -> tuple[_Writer, dict]:
    """The writer of a field's differentials and its terms by tree, `{tree: [(power,
    coefficient)]}`: coefficients as SymPy, the h-terms (power >= 1) multiplied by
    `scale`, zero terms dropped, each remaining tree registered with the writer."""
    w = _Writer({o.colour: o for o in eq.oracles}, eq.blocks, backend)
    by_tree: dict[Tree, list[tuple[int, sp.Expr]]] = {}
    for t, k, c in eq.terms:
        coeff = eq.domain.to_sympy(c) * (scale if k >= 1 else 1)
        if coeff != 0:
            by_tree.setdefault(t, []).append((k, coeff))
            w.need(t)
    return w, by_tree
