"""Spelling and index notation of labelled forests (stochastic generators).

Spelling. A node is its colour, `~k` when it belongs to cumulant block k, and its
children in brackets; a forest lists its trees, comma-separated: `E[E~1,E~1]` is
the drift term Σⱼₖ ∂ᵢⱼₖE Cov(∂ⱼE_γ, ∂ₖE_γ) = ∇³E:Σ and `E~1,E~1` the diffusion term
Σ = Cov(∇E_γ). Spellings are read back by a small parser (never `eval`).

Index notation. Every vertex gets an index (the roots the free ones i, j, …); a
vertex of a loss E with children c₁ … c_m is the tensor E_{v c₁…c_m} = ∂_v∂_{c₁}…E,
of a field f it is ∂_{c₁…c_m} f_v. Vertices of label 0 are means (derivatives of
the full loss); the vertices of one block enter through their joint cumulant over
the draw γ: Cov(·,·) for two, κₙ(…) for n. Repeated indices are summed (Σ_jk).

Example:
    >>> spell((("E", 0, (("E", 1, ()), ("E", 1, ()))),))
    'E[E~1,E~1]'
    >>> index_text(read_forest("E[E~1,E~1]"), {"E": "grad"})[0]
    'Σ_jk E_ijk Cov(E_j, E_k)'
"""

from __future__ import annotations

import re

from .._core._errors import BeaValueError

__all__ = ["index_text", "read_forest", "spell"]

_LETTERS = "ijklmnpqrstuvwxyzabcdefg"
_SUBSCRIPT_DIGITS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def spell(forest: tuple) -> str:
    """The spelling of a labelled forest (see the module docs)."""

    def one(node) -> str:
        colour, label, kids = node
        text = colour + (f"~{label}" if label else "")
        return text + (f"[{','.join(one(k) for k in kids)}]" if kids else "")

    return ",".join(one(n) for n in forest)


_MAX_SPELLING = 4096
_MAX_NESTING = 64
"""Bounds on a spelling read back (a term of order N has at most a few N vertices)."""

_TOKEN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_]*)(?:~(\d+))?|([\[\],]))")


def read_forest(text: str) -> tuple:
    """A forest from its spelling (labels kept as written; not canonicalised)."""
    if not isinstance(text, str):
        raise BeaValueError(f"forest {text!r} must be a spelling such as 'E[E~1,E~1]'")
    depth = deepest = 0
    for ch in text[: _MAX_SPELLING + 1]:
        depth += (ch == "[") - (ch == "]")
        deepest = max(deepest, depth)
    if len(text) > _MAX_SPELLING or deepest > _MAX_NESTING:
        raise BeaValueError(
            f"a forest spelling of {len(text)} characters nested {deepest} deep is over the "
            f"bounds ({_MAX_SPELLING} characters, {_MAX_NESTING} levels)"
        )
    pos = 0

    def token():
        nonlocal pos
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            return None
        pos = m.end()
        return m

    def node():
        m = token()
        if m is None or m.group(1) is None:
            raise BeaValueError(
                f"forest {text!r} cannot be read at position {pos}; spell it as colours with "
                "optional ~block and [children], e.g. 'E[E~1,E~1]'"
            )
        kids: list = []
        save = pos
        nxt = token()
        if nxt is not None and nxt.group(3) == "[":
            kids = forest("]")
        else:
            _rewind(save)
        return (m.group(1), int(m.group(2) or 0), tuple(sorted(kids)))

    def _rewind(p):
        nonlocal pos
        pos = p

    def forest(close):
        items = [node()]
        while True:
            save = pos
            m = token()
            if m is not None and m.group(3) == ",":
                items.append(node())
                continue
            if close and m is not None and m.group(3) == close:
                return items
            if not close and m is None and not text[pos:].strip():
                _rewind(save)
                return items
            raise BeaValueError(
                f"forest {text!r} cannot be read at position {save}; spell it as colours "
                "with optional ~block and [children], e.g. 'E[E~1,E~1]'"
            )

    return tuple(sorted(forest(None)))


def index_text(
    forest: tuple, kinds: dict, free: str = "ij", blocks: dict | None = None, names=None
) -> tuple[str, str]:
    """`(text, latex)` of a forest in index notation; the roots take the indices
    `free` in order, `kinds[colour]` is "grad" or "field". With several players,
    `blocks[colour]` is the printed symbol of the block the colour's value lives in:
    each index then carries its block (`E_(θi,φj)`, summed over `Σ_φj`), since the
    tensor of a partial gradient mixes the players' coordinates; `names[colour]` is
    the printed name of its loss (`E` for the colour `E_theta`)."""
    names = {c: n for c, n in (names or {}).items()}
    letters = iter(_LETTERS)
    taken = set(free[: len(forest)])
    verts: list = []  # (colour, label, index, child indices)

    def visit(node, index):
        colour, label, kids = node
        idx = [next(x for x in letters if x not in taken) for _ in kids]
        taken.update(idx)
        verts.append((colour, label, index, idx))
        for k, i in zip(kids, idx, strict=True):
            visit(k, i)

    for n, root_index in zip(forest, free, strict=False):
        visit(n, root_index)
    summed = sorted((i for v in verts for i in v[3]), key=_LETTERS.index)
    if blocks:  # tag every index with the block of the vertex it belongs to
        owner = {index: blocks.get(colour, "") for colour, _, index, _ in verts}
        tag = {i: owner.get(i, "") + i for i in (*free, *summed)}
        verts = [(c, lab, tag[i], [tag[k] for k in kids]) for c, lab, i, kids in verts]
        summed = [tag[i] for i in summed]

    sep = "," if blocks else ""

    def factor(colour, index, kids, latex):
        name = names.get(colour, colour)
        if kinds.get(colour, "grad") == "field":
            if latex:
                d = f"\\partial_{{{sep.join(kids)}}} " if kids else ""
                return f"{d}{name}_{{{index}}}"
            return (f"∂_{sep.join(kids)} " if kids else "") + f"{name}_{index}"
        sub = sep.join([index, *kids])
        if latex:
            return f"{name}_{{{sub}}}"
        return f"{name}_({sub})" if blocks else f"{name}_{sub}"

    def build(latex: bool) -> str:
        parts = []
        blocks: dict[int, list[str]] = {}
        for colour, label, index, kids in verts:
            f = factor(colour, index, kids, latex)
            if label:
                blocks.setdefault(label, []).append(f)
            else:
                parts.append(f)
        for members in blocks.values():
            if len(members) == 2:
                head = "\\operatorname{Cov}" if latex else "Cov"
            else:
                n = len(members)
                head = f"\\kappa_{{{n}}}" if latex else "κ" + str(n).translate(_SUBSCRIPT_DIGITS)
            parts.append(f"{head}({', '.join(members)})")
        if summed:
            total = sep.join(summed)
            parts.insert(0, f"\\sum_{{{total}}}" if latex else f"Σ_{total}")
        return (" " if not latex else " \\, ").join(parts)

    return build(False), build(True)
