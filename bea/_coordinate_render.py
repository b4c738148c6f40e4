"""Text and LaTeX of a `CoordinateModifiedEquation`, one line per coordinate.

θ̇_i = Σ_p h^p field[p][i]; `E_12` is ∂₁∂₂E and `s_i` the declared sign of ∂ᵢE.
"""

from __future__ import annotations

import sympy as sp

__all__ = ["render_latex", "render_text"]

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


def render_text(meq) -> str:
    lines = [
        f"{meq.rule}: coordinate-wise modified equation to order {meq.order} in h, "
        f"dimension {meq.dimension}, flow over time h"
    ]
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
