"""Text and LaTeX of a `CoordinateModifiedEquation`, one line per coordinate.

θ̇_i = Σ_p h^p field[p][i]; `E_12` is ∂₁∂₂E and `s_i` the declared sign of ∂ᵢE.
"""

from __future__ import annotations

import sympy as sp

from ._errors import BeaValueError

__all__ = ["INDEX_SYMBOLS", "index_form", "render_latex", "render_text"]

INDEX_SYMBOLS = sp.symbols("g_i s_i g_j s_j", real=True)
"""∂ᵢE, sign ∂ᵢE, ∂ⱼE, sign ∂ⱼE in the index form."""


def _idx(meq, s):
    for sym, (_, idx) in meq.derivatives:
        if sym == s:
            return tuple(idx)
    return None


def index_form(meq):
    """The order ≤ 1 field in index notation, read off coordinate 1 of a derivation in
    dimension d ≥ 2: θ̇ᵢ = Σ_p h^p [A_p(gᵢ) + Σ_k X_k(gᵢ) Σⱼ ∂ᵢ∂ⱼE Y_k(gⱼ)].

    Every Hessian entry of a coordinate-wise field comes from differentiating an
    elementwise function of the gradient along a vector field, so the field has this
    form; the coefficient of ∂₁∂₂E gives the X_k, Y_k (split by the coordinate their
    factors depend on) and the coefficient of ∂₁∂₁E must equal Σ_k X_k(g₁) Y_k(g₁)
    (the j = i term), which is checked exactly. Returns `[(p, A_p, [(X_k, Y_k), ...])]`
    in `INDEX_SYMBOLS` (Y_k written in gᵢ, sᵢ: evaluate it at coordinate j), or raises
    `BeaValueError` saying which term breaks the form.
    """
    if meq.dimension < 2 or meq.order > 1:
        raise BeaValueError(
            "index notation needs an equation of order ≤ 1 derived in dimension ≥ 2; "
            "derive it with dimension=2 or more"
        )
    U, S, W, T = INDEX_SYMBOLS
    out = []
    syms = {tuple(idx): s for s, (name, idx) in meq.derivatives if name == "E"}
    signs = dict(meq.signs)
    g1, g2 = syms.get((0,)), syms.get((1,))
    s1, s2 = signs.get(("E", 0), sp.S.One), signs.get(("E", 1), sp.S.One)
    mine = {k: v for k, v in {g1: U, s1: S}.items() if isinstance(k, sp.Symbol)}
    other = {k: v for k, v in {g2: W, s2: T}.items() if isinstance(k, sp.Symbol)}
    allowed = set(mine) | set(other)
    for p, row in enumerate(meq.field):
        e = sp.expand(row[0])
        seconds = {s for s in e.free_symbols if len(_idx(meq, s) or ()) == 2}
        for s in e.free_symbols - seconds - allowed:
            if _idx(meq, s) is not None:
                raise BeaValueError(
                    f"the h^{p} term of rule {meq.rule!r} uses {s}; it is not "
                    "elementwise with Hessian contractions"
                )
        e11, e12 = syms.get((0, 0)), syms.get((0, 1))
        if seconds - {e11, e12}:
            raise BeaValueError(
                f"the h^{p} term of rule {meq.rule!r} uses Hessian entries away from "
                "its own row; no elementwise kernel"
            )
        local = e.xreplace({s: 0 for s in seconds})
        c12 = sp.expand(e.coeff(e12)) if e12 in seconds else sp.S.Zero
        c11 = sp.expand(e.coeff(e11)) if e11 in seconds else sp.S.Zero
        groups: dict[sp.Expr, sp.Expr] = {}
        for term in sp.Add.make_args(c12):
            if term == 0:
                continue
            x_part, y_part = sp.S.One, sp.S.One
            for f in sp.Mul.make_args(sp.factor(term)):
                fs = f.free_symbols
                if fs & set(other) and fs & set(mine):
                    raise BeaValueError(
                        f"the h^{p} term of rule {meq.rule!r} couples coordinates 1 "
                        "and 2 beyond a Hessian contraction; no elementwise kernel"
                    )
                if fs & set(other):
                    y_part *= f
                else:
                    x_part *= f
            key = y_part.xreplace(other)
            groups[key] = groups.get(key, sp.S.Zero) + x_part.xreplace(mine)
        diag = sum((x * y.xreplace({W: U, T: S}) for y, x in groups.items()), sp.S.Zero)
        gap = sp.expand(c11.xreplace(mine) - diag)
        if gap != 0 and sp.simplify(gap) != 0:
            raise BeaValueError(
                f"the h^{p} term of rule {meq.rule!r} has a diagonal Hessian part that "
                "is not a contraction; no elementwise kernel"
            )
        if local.free_symbols & set(other):
            raise BeaValueError(f"the h^{p} term of rule {meq.rule!r} is not coordinate-wise")
        pairs = [(x, y.xreplace({W: U, T: S})) for y, x in groups.items()]
        out.append((p, local.xreplace(mine), pairs))
    return out


_SUP = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _h(p: int, latex: bool) -> str:
    if p == 0:
        return ""
    if latex:
        return "h" if p == 1 else f"h^{{{p}}}"
    return "h" if p == 1 else "h" + str(p).translate(_SUP)


def _series(terms, latex: bool) -> str:
    parts = []
    for p, e in enumerate(terms):
        if e == 0:
            continue
        body = sp.latex(e) if latex else sp.sstr(e)
        if p == 0:
            parts.append(body)
        else:
            parts.append(
                rf"{_h(p, True)} \left({body}\right)" if latex else f"{_h(p, False)} ({body})"
            )
    if not parts:
        return "0"
    return (" + " if latex else "\n        + ").join(parts)


def _index_text(meq) -> str | None:
    """θ̇ᵢ = … with gᵢ = ∂ᵢE, sᵢ = sign ∂ᵢE, Σⱼ Hᵢⱼ (·)ⱼ, or None when not of that form."""
    try:
        form = index_form(meq)
    except BeaValueError:
        return None
    U, S, W, T = INDEX_SYMBOLS
    parts = []
    for p, local, pairs in form:
        pieces = [sp.sstr(sp.factor(local))] if local != 0 else []
        for x, y in pairs:
            yj = sp.factor(y.xreplace({U: W, S: T}))
            pieces.append(f"{sp.sstr(sp.factor(x))} * Σ_j H_ij*({sp.sstr(yj)})")
        if not pieces:
            continue
        body = " + ".join(pieces)
        parts.append(body if p == 0 else f"{_h(p, False)} ({body})")
    return "dθ_i/dt = " + ("\n        + ".join(parts) or "0")


def render_text(meq) -> str:
    lines = [
        f"{meq.rule}: coordinate-wise modified equation to order {meq.order} in h, "
        f"dimension {meq.dimension}, flow over time h"
    ]
    index = _index_text(meq)
    if index is not None:
        lines.append(index.replace("\\n", "\n"))
        lines.append("  (g_i = ∂_iE, s_i = sign ∂_iE, H_ij = ∂_i∂_jE; per coordinate:)")
    for i in range(meq.dimension):
        lines.append(f"dθ{i + 1}/dt = " + _series([row[i] for row in meq.field], False))
    for name, table in meq.slow_manifold:
        for i in range(meq.dimension):
            lines.append(f"slow manifold {name}{i + 1} = " + _series([r[i] for r in table], False))
    if meq.signs:
        lines.append(
            "on the region " + ", ".join(f"sign ∂{i + 1}{loss} = {v}" for (loss, i), v in meq.signs)
        )
    return "\n".join(lines)


def render_latex(meq) -> str:
    rows = [
        rf"\dot\theta_{{{i + 1}}} &= " + _series([row[i] for row in meq.field], True)
        for i in range(meq.dimension)
    ]
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"
