"""Text and LaTeX rendering of modified equations, in two notations.

* elementary differentials (Hairer-Lubich-Wanner): `f'f`, `f''(f, f)`, `f'f'f`; a
  vertex of colour X with m children is the m-th derivative X^(m) applied to them.
* gradient notation, for gradient oracles: the leaf E is grad E, E[E] is the Hessian
  times the gradient, E[E,E] the third-derivative tensor contracted with two
  gradients. With blocks (players) the derivatives are partial:
  `L_phi[M_theta]` is grad^2_{phi theta} L grad_theta M, the block of the Hessian of
  L with phi rows and theta columns times the theta-gradient of M.

Each term prints as `sign coefficient h^k differential`.
"""

from __future__ import annotations

import re

import sympy as sp

from ._trees import Tree

__all__ = [
    "block_symbol",
    "coefficient_text",
    "render_latex",
    "render_text",
    "tree_latex",
    "tree_text",
]

_GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "zeta": "ζ",
    "eta": "η", "theta": "θ", "iota": "ι", "kappa": "κ", "lambda": "λ", "mu": "μ",
    "nu": "ν", "xi": "ξ", "pi": "π", "rho": "ρ", "sigma": "σ", "tau": "τ",
    "upsilon": "υ", "phi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω",
}  # fmt: skip
_SUP = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def block_symbol(name: str, latex: bool = False) -> str:
    """`theta` -> θ (or \\theta); other names unchanged."""
    if latex:
        return sp.latex(sp.Symbol(name))
    return _GREEK.get(name, name)


def _sup(n: int) -> str:
    return str(n).translate(_SUP)


def _name_latex(name: str) -> str:
    return sp.latex(sp.Symbol(name))


# -- elementary differentials -------------------------------------------------------
def tree_text(t: Tree, notation: str, oracles: dict, single_block: bool) -> str:
    """One elementary differential as Unicode text."""
    if notation == "gradient":
        return _grad_text(t, oracles, single_block)
    m = len(t.children)
    if m == 0:
        return t.root
    head = t.root + ("'" * m if m <= 3 else f"⁽{_sup(m)}⁾")
    kids = [tree_text(c, notation, oracles, single_block) for c in t.children]
    return head + kids[0] if m == 1 else f"{head}({', '.join(kids)})"


def tree_latex(t: Tree, notation: str, oracles: dict, single_block: bool) -> str:
    """One elementary differential as LaTeX."""
    if notation == "gradient":
        return _grad_latex(t, oracles, single_block)
    m = len(t.children)
    name = _name_latex(t.root)
    if m == 0:
        return name
    head = name + ("'" * m if m <= 3 else f"^{{({m})}}")
    kids = [tree_latex(c, notation, oracles, single_block) for c in t.children]
    return f"{head} {kids[0]}" if m == 1 else f"{head}({', '.join(kids)})"


def _chain(t: Tree) -> tuple[int, Tree]:
    """Length r of the run of one-child vertices of t's colour from the root, and the rest."""
    r = 0
    while len(t.children) == 1 and t.children[0].root == t.root:
        r += 1
        t = t.children[0]
    return r, t


def _grad_text(t: Tree, oracles: dict, single_block: bool) -> str:
    o = oracles[t.root]
    m = len(t.children)
    if single_block:
        if m == 1:
            r, rest = _chain(t)
            if r >= 2:
                return f"(∇²{o.name}){_sup(r)} {_grad_text(rest, oracles, single_block)}"
        op = "∇" + ("" if m == 0 else _sup(m + 1))
    else:
        subs = [o.block] + [oracles[c.root].block for c in t.children]
        op = "∇" + ("" if m == 0 else _sup(m + 1)) + "_" + "".join(block_symbol(b) for b in subs)
        op += " "
    head = f"{op}{o.name}"
    kids = [_grad_text(c, oracles, single_block) for c in t.children]
    if m == 0:
        return head
    return f"{head} {kids[0]}" if m == 1 else f"{head}({', '.join(kids)})"


def _grad_latex(t: Tree, oracles: dict, single_block: bool) -> str:
    o = oracles[t.root]
    m = len(t.children)
    name = _name_latex(o.name)
    if single_block:
        if m == 1:
            r, rest = _chain(t)
            if r >= 2:
                return f"(\\nabla^2 {name})^{{{r}}} {_grad_latex(rest, oracles, single_block)}"
        op = "\\nabla" + ("" if m == 0 else f"^{{{m + 1}}}")
    else:
        subs = [o.block] + [oracles[c.root].block for c in t.children]
        op = "\\nabla" + ("" if m == 0 else f"^{{{m + 1}}}")
        op += "_{" + "".join(block_symbol(b, latex=True) for b in subs) + "}"
    head = f"{op} {name}"
    kids = [_grad_latex(c, oracles, single_block) for c in t.children]
    if m == 0:
        return head
    return f"{head} \\, {kids[0]}" if m == 1 else f"{head}({', '.join(kids)})"


# -- whole equations ---------------------------------------------------------------
def coefficient_text(c: sp.Expr) -> str:
    """A coefficient in Unicode: Greek parameter names as letters, powers as superscripts."""
    greek = {s: sp.Symbol(_GREEK[s.name]) for s in c.free_symbols if s.name in _GREEK}
    text = str(c.xreplace(greek)) if greek else str(c)
    return re.sub(r"\*\*(\d+)", lambda m: _sup(int(m.group(1))), text)


def _split_sign(c: sp.Expr) -> tuple[str, sp.Expr]:
    if c.is_number:
        return ("-", -c) if c < 0 else ("+", c)
    if c.could_extract_minus_sign():
        return "-", -c
    return "+", c


def _by_block(meq) -> dict[str, list]:
    oracles = meq.colours
    out: dict[str, list] = {b: [] for b in meq.blocks}
    for t, k, c in meq.terms:
        out[oracles[t.root].block].append((t, k, meq.domain.to_sympy(c)))
    return out


def _header(meq) -> str:
    params = ", ".join(f"{k}={v}" for k, v in meq.params)
    params = f" ({params})" if params else ""
    if meq.convention == "per_player":
        reads = ", ".join(
            f"{block_symbol(b)} at {coefficient_text(t)}"
            for b, t in zip(meq.blocks, meq.player_times, strict=True)
        )
        return (
            f"{meq.rule}{params}: modified equation to order {meq.order} in h, "
            f"per-player convention (each block read at its own time: {reads})"
        )
    return (
        f"{meq.rule}{params}: modified equation to order {meq.order} in h, "
        f"flow over time {meq.time}"
    )


def render_text(meq, notation: str) -> str:
    oracles = meq.colours
    single = len(meq.blocks) == 1
    lines = [_header(meq)]
    for block, terms in _by_block(meq).items():
        lhs = f"d{block_symbol(block)}/dt = "
        pad = " " * len(lhs)
        if not terms:
            lines.append(lhs + "0")
            continue
        for i, (t, k, c) in enumerate(terms):
            sign, mag = _split_sign(c)
            coeff = "" if mag == 1 else coefficient_text(mag)
            coeff = f"({coeff})" if (" + " in coeff or " - " in coeff) else coeff
            hpow = "" if k == 0 else ("h" if k == 1 else f"h{_sup(k)}")
            body = " ".join(x for x in (coeff, hpow, tree_text(t, notation, oracles, single)) if x)
            lead = lhs if i == 0 else pad
            sign = ("- " if sign == "-" else "") if i == 0 else f"{sign} "
            lines.append(f"{lead}{sign}{body}")
    return "\n".join(lines)


def render_latex(meq, notation: str) -> str:
    oracles = meq.colours
    single = len(meq.blocks) == 1
    rows = []
    for block, terms in _by_block(meq).items():
        lhs = f"\\dot{{{block_symbol(block, latex=True)}}} &= "
        if not terms:
            rows.append(lhs + "0")
            continue
        by_power: dict[int, list] = {}
        for t, k, c in terms:
            by_power.setdefault(k, []).append((t, c))
        parts = []
        for i, (k, group) in enumerate(sorted(by_power.items())):
            chunk = []
            for j, (t, c) in enumerate(group):
                sign, mag = _split_sign(c)
                coeff = "" if mag == 1 else sp.latex(mag)
                if " + " in coeff or " - " in coeff:
                    coeff = f"\\left({coeff}\\right)"
                hpow = "" if k == 0 else ("h" if k == 1 else f"h^{{{k}}}")
                body = " ".join(
                    x for x in (coeff, hpow, tree_latex(t, notation, oracles, single)) if x
                )
                first = i == 0 and j == 0
                chunk.append((("-" if sign == "-" else "") if first else sign) + " " + body)
            parts.append(" ".join(chunk))
        rows.append(lhs + " \\\\\n&\\quad ".join(parts))
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"
